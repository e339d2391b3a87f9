package playground

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"atoll.dev/atoll/internal/node"
	atollrt "atoll.dev/atoll/internal/runtime"
	"atoll.dev/atoll/internal/service/builtin"
)

// podStopGrace is how long a machine's pods get between SIGTERM and
// SIGKILL when the machine is removed.
const podStopGrace = 10 * time.Second

// stopPods stops the pods running on the machines and removes every pod
// with what it had outside itself: cgroups, veths, iptables rules and
// addresses. Pods get SIGTERM, and SIGKILL if still running after grace;
// then `atoll pod gc` removes them. It returns what it could not do, one
// entry per machine. The machines are done in parallel.
func stopPods(binary string, machines []Machine, grace time.Duration) []string {
	problems := make([]string, len(machines))
	done := make(chan struct{}, len(machines))
	for i, m := range machines {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := m.stopPods(binary, grace); err != nil {
				problems[i] = err.Error()
			}
		}()
	}
	for range machines {
		<-done
	}
	return slices.DeleteFunc(problems, func(p string) bool { return p == "" })
}

func (m Machine) stopPods(binary string, grace time.Duration) error {
	rt, err := m.runtime()
	if err != nil {
		return fmt.Errorf("playground: machine %s: %w", m.Name, err)
	}
	pods, err := rt.List()
	if err != nil {
		return fmt.Errorf("playground: machine %s: %w", m.Name, err)
	}
	if len(pods) == 0 {
		return nil
	}
	// A pod runs until its `atoll pod run` has cleaned up after it. Stop
	// errors are pods that exited meanwhile.
	running := runningPods(pods)
	for _, uuid := range running {
		rt.Stop(uuid, false)
	}
	if running, err = waitPods(rt, grace); err != nil {
		return fmt.Errorf("playground: machine %s: %w", m.Name, err)
	}
	for _, uuid := range running {
		rt.Stop(uuid, true)
	}
	if running, err = waitPods(rt, 5*time.Second); err != nil {
		return fmt.Errorf("playground: machine %s: %w", m.Name, err)
	}
	// gc, unlike the above, must run inside the machine: it clears a pod's
	// network in the namespace it runs in.
	if err := m.atoll(binary, "pod", "gc", "--grace-period=0s"); err != nil {
		return err
	}
	if len(running) > 0 {
		return fmt.Errorf("playground: machine %s: pods still running after SIGKILL: %s", m.Name, strings.Join(running, " "))
	}
	return nil
}

// runtime opens the machine's container runtime, with the directories
// `atoll pod` derives from the machine's root and run directory.
func (m Machine) runtime() (*atollrt.Runtime, error) {
	p := node.Paths{Root: m.Root, RunDir: m.RunDir}
	return atollrt.Open(atollrt.Options{StateDir: p.StateDir(), RunDir: p.RunDirPath(), ConfigDir: p.ConfigDir()})
}

func runningPods(pods []atollrt.PodInfo) []string {
	var running []string
	for _, p := range pods {
		if p.State == "running" {
			running = append(running, p.UUID)
		}
	}
	return running
}

// waitPods waits up to limit for every pod to stop running, and returns
// those that still run.
func waitPods(rt *atollrt.Runtime, limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	for {
		pods, err := rt.List()
		if err != nil {
			return nil, err
		}
		running := runningPods(pods)
		if len(running) == 0 || time.Now().After(deadline) {
			return running, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// atoll runs the atoll binary inside the machine, as Exec does; its error
// carries what the command printed.
func (m Machine) atoll(binary string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), m.env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := startIn(netnsPath(m.NetNS), cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("playground: machine %s: atoll %s: %w: %s", m.Name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// removeUnits removes what the machines' units leave on the host: they
// outlive their daemons, so their processes (if any are still there) and
// cgroups go here, as a machine's shutdown would take them.
func removeUnits(machines []Machine) []string {
	var problems []string
	for _, m := range machines {
		paths := node.Paths{Root: m.Root, RunDir: m.RunDir}
		id, err := os.ReadFile(paths.MachineIDFile())
		if err != nil {
			continue // never started: no units
		}
		if err := builtin.RemoveCgroupTree(node.UnitCgroupParent(paths, strings.TrimSpace(string(id)))); err != nil {
			problems = append(problems, fmt.Sprintf("playground: machine %s: units: %v", m.Name, err))
		}
	}
	return problems
}
