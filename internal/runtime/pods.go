package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/stage1"
)

// PodInfo is what `atoll pod list` and `status` show of a pod.
type PodInfo struct {
	UUID     string
	State    string
	Phase    pod.Phase
	Dir      string
	Manifest *pod.Manifest // nil for a pod too early or too broken to have one
	Run      *pod.RunState // nil for a pod that never started
	Apps     []pod.AppStatus
	Changed  time.Time
}

// Created is when the pod was prepared.
func (i PodInfo) Created() time.Time {
	if i.Manifest != nil {
		return i.Manifest.Created
	}
	return i.Changed
}

func (rt *Runtime) info(e pod.Entry) PodInfo {
	in := PodInfo{UUID: e.UUID, State: e.State(), Phase: e.Phase, Dir: e.Dir, Changed: e.Changed}
	m, err := pod.ReadManifest(e.Dir)
	if err != nil {
		return in
	}
	in.Manifest = m
	in.Run, _ = pod.ReadRunState(e.Dir)
	for _, a := range m.Apps {
		st, _ := pod.ReadAppStatus(e.Dir, a.Name)
		in.Apps = append(in.Apps, st)
	}
	return in
}

// List returns every pod, oldest first.
func (rt *Runtime) List() ([]PodInfo, error) {
	entries, err := rt.Pods.List()
	if err != nil {
		return nil, err
	}
	out := make([]PodInfo, 0, len(entries))
	for _, e := range entries {
		out = append(out, rt.info(e))
	}
	return out, nil
}

// Status returns one pod, found by UUID, UUID prefix or name.
func (rt *Runtime) Status(ref string) (PodInfo, error) {
	e, err := rt.find(ref)
	if err != nil {
		return PodInfo{}, err
	}
	return rt.info(e), nil
}

func (rt *Runtime) find(ref string) (pod.Entry, error) {
	e, err := rt.Pods.Find(ref)
	if err == nil || !errors.Is(err, pod.ErrNotFound) {
		return e, err
	}
	// A pod's --name.
	entries, lerr := rt.Pods.List()
	if lerr != nil {
		return e, lerr
	}
	var found []pod.Entry
	for _, c := range entries {
		if m, merr := pod.ReadManifest(c.Dir); merr == nil && m.Name == ref {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return e, err
	case 1:
		return found[0], nil
	}
	return e, fmt.Errorf("pod %q: %w: %d pods have that name", ref, pod.ErrAmbiguous, len(found))
}

// Wait waits until the pod is no longer running (status --wait), or ctx ends.
func (rt *Runtime) Wait(ctx context.Context, ref string) (PodInfo, error) {
	for {
		in, err := rt.Status(ref)
		if err != nil {
			return in, err
		}
		switch in.State {
		case "running", "preparing", "embryo", "prepared":
		default:
			return in, nil
		}
		select {
		case <-ctx.Done():
			return in, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RunPrepared runs a prepared pod.
func (rt *Runtime) RunPrepared(ctx context.Context, ref string, o RunOptions) (int, error) {
	e, err := rt.find(ref)
	if err != nil {
		return 0, err
	}
	p, err := rt.Pods.Acquire(e.UUID)
	if err != nil {
		return 0, err
	}
	return rt.Run(ctx, p, o)
}

// Stop asks a running pod to stop: SIGTERM to its PID 1, which passes it to
// the apps and kills them after the stop timeout; with force, SIGKILL.
func (rt *Runtime) Stop(ref string, force bool) error {
	in, err := rt.Status(ref)
	if err != nil {
		return err
	}
	if in.State != "running" || in.Run == nil {
		return fmt.Errorf("pod %s: %w: it is %s", in.UUID, pod.ErrPhase, in.State)
	}
	sig := unix.SIGTERM
	if force {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(in.Run.PID, sig); err != nil && err != unix.ESRCH {
		return fmt.Errorf("pod %s: signal: %w", in.UUID, err)
	}
	return nil
}

// Remove deletes a pod that is not running, with what it had outside
// (networks, cgroup).
func (rt *Runtime) Remove(ctx context.Context, ref string) error {
	e, err := rt.find(ref)
	if err != nil {
		return err
	}
	p, err := rt.Pods.Lock(e.UUID)
	if err != nil {
		if errors.Is(err, pod.ErrLocked) {
			return fmt.Errorf("pod %s: %w (stop it first)", e.UUID, err)
		}
		return err
	}
	return rt.destroy(ctx, p)
}

func (rt *Runtime) destroy(ctx context.Context, p *pod.Pod) error {
	var cleanErr error
	if m, err := pod.ReadManifest(p.Dir()); err == nil {
		cleanErr = rt.cleanup(ctx, m)
	}
	if err := p.Remove(); err != nil {
		return err
	}
	return cleanErr
}

// GCOptions are gc's grace periods (rkt's defaults: 30m and 24h).
type GCOptions struct {
	// GracePeriod is how long an exited pod stays after gc marked it.
	GracePeriod time.Duration
	// ExpirePrepared is how long a prepared pod may wait to be run.
	ExpirePrepared time.Duration
	// MarkOnly marks exited pods without removing any.
	MarkOnly bool
}

// GCResult says what gc did.
type GCResult struct {
	Marked, Removed []string
	Errors          []error
}

// GC collects pods in two passes, as rkt does: exited pods are marked
// (moved to exited-garbage), and marked pods older than the grace period,
// aborted prepares and expired prepared pods are removed with their
// networks and cgroups. Pods that are running or locked are left alone.
func (rt *Runtime) GC(ctx context.Context, o GCOptions) (GCResult, error) {
	var res GCResult
	entries, err := rt.Pods.List()
	if err != nil {
		return res, err
	}
	now := time.Now()
	for _, e := range entries {
		if e.Locked {
			continue
		}
		var remove, mark bool
		switch e.Phase {
		case pod.PhaseRun:
			mark = true
			remove = o.GracePeriod <= 0
		case pod.PhaseExitedGarbage:
			remove = now.Sub(e.Changed) >= o.GracePeriod
		case pod.PhasePrepare, pod.PhaseGarbage, pod.PhaseEmbryo:
			remove = true
		case pod.PhasePrepared:
			remove = o.ExpirePrepared > 0 && now.Sub(e.Changed) >= o.ExpirePrepared
		}
		if !mark && (!remove || o.MarkOnly) {
			continue
		}
		p, err := rt.Pods.Lock(e.UUID)
		if err != nil {
			if !errors.Is(err, pod.ErrLocked) && !errors.Is(err, pod.ErrNotFound) {
				res.Errors = append(res.Errors, err)
			}
			continue
		}
		if mark {
			if err := p.Move(pod.PhaseExitedGarbage); err != nil {
				res.Errors = append(res.Errors, err)
				p.Close()
				continue
			}
			res.Marked = append(res.Marked, e.UUID)
		}
		if !remove || o.MarkOnly {
			p.Close()
			continue
		}
		if err := rt.destroy(ctx, p); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		res.Removed = append(res.Removed, e.UUID)
	}
	return res, nil
}

// Enter runs argv in a running pod's app (the first app when app is
// empty), confined as the app is, and returns its exit code.
func (rt *Runtime) Enter(ref, app string, argv []string) (int, error) {
	in, err := rt.Status(ref)
	if err != nil {
		return 0, err
	}
	if in.State != "running" || in.Run == nil || in.Manifest == nil {
		return 0, fmt.Errorf("pod %s: %w: it is %s", in.UUID, pod.ErrPhase, in.State)
	}
	m := in.Manifest
	a := &m.Apps[0]
	if app != "" {
		var ok bool
		if a, ok = m.App(app); !ok {
			return 0, fmt.Errorf("pod %s: no app named %q", in.UUID, app)
		}
	} else if len(m.Apps) > 1 {
		return 0, fmt.Errorf("pod %s has %d apps: say which with --app", in.UUID, len(m.Apps))
	}
	st, err := pod.ReadAppStatus(in.Dir, a.Name)
	if err != nil {
		return 0, err
	}
	if st.PID == 0 || st.Finished != nil {
		return 0, fmt.Errorf("pod %s: app %s is not running", in.UUID, a.Name)
	}
	hostPID, err := stage1.AppPID(in.Run.PID, st.PID)
	if err != nil {
		return 0, fmt.Errorf("pod %s: app %s: %w", in.UUID, a.Name, err)
	}
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	// The app's cgroup: what enter runs counts against the app's limits.
	procs, err := cgroupProcsFiles(appCgroupPath(m.UUID, a.Name))
	if err != nil {
		return 0, err
	}
	return stage1.Enter(stage1.EnterOptions{
		PodDir: in.Dir, Manifest: m, App: a, AppPID: hostPID, CgroupProcs: procs, Argv: argv,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
}

// LogPath is the log file of a pod's app (the first when app is empty).
func (rt *Runtime) LogPath(ref, app string) (string, error) {
	in, err := rt.Status(ref)
	if err != nil {
		return "", err
	}
	if in.Manifest == nil {
		return "", fmt.Errorf("pod %s: no manifest: it is %s", in.UUID, in.State)
	}
	if app == "" {
		app = in.Manifest.Apps[0].Name
	} else if _, ok := in.Manifest.App(app); !ok {
		return "", fmt.Errorf("pod %s: no app named %q", in.UUID, app)
	}
	return filepath.Join(pod.AppDir(in.Dir, app), "log"), nil
}
