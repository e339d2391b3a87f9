package builtin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"atoll.dev/atoll/internal/service"
)

// Dependencies between units, as systemd's transactions treat them for
// start and stop (systemd.unit(5)):
//
//   - starting a unit starts what it Requires=, BindsTo= and Wants=,
//     transitively, and stops what it Conflicts= with (either way);
//   - After= and Before= order those jobs: a unit starts once the units
//     it is after have finished starting, and stops before them;
//   - a unit does not start when a unit it Requires= or BindsTo= and is
//     ordered after failed to start (its job fails: "dependency");
//     a unit it only Wants= may fail;
//   - stopping a unit first stops the active units that Requires=,
//     BindsTo= or PartOf= it, transitively; restarting it restarts them;
//   - a unit bound to another (BindsTo=) stops when that one stops or
//     fails by itself.
//
// Only services take part. Dependencies on other unit types (targets,
// sockets, mounts) count as met, and ordering against them as void: the
// builtin manager has no such units.
//
// A transaction is planned from the units' loaded files, then its jobs
// run concurrently, each waiting for the jobs it is ordered after.

// job is one unit's start or stop within a transaction.
type job struct {
	u     *unit
	kind  string // start or stop
	after []*job // jobs that must finish first
	// needs are the jobs of after whose failure cancels this one: the
	// units this one Requires= or BindsTo=.
	needs []*job
	done  chan struct{}
	err   error
}

func newJob(u *unit, kind string) *job { return &job{u: u, kind: kind, done: make(chan struct{})} }

// takesPart reports whether dep is a unit the builtin manager runs.
func takesPart(dep string) bool { return strings.HasSuffix(dep, ".service") }

// startTransaction starts name and what it pulls in.
func (m *Manager) startTransaction(ctx context.Context, name string) error {
	jobs, root, err := m.planStart(name)
	if err != nil {
		return err
	}
	runJobs(ctx, jobs)
	return root.err
}

// planStart makes the jobs of starting name: a start job for name and
// each service it pulls in, a stop job for each active service that
// conflicts with one of those.
func (m *Manager) planStart(name string) ([]*job, *job, error) {
	rootUnit, err := m.unitFor(name)
	if err != nil {
		return nil, nil, err
	}
	starts := map[string]*job{name: newJob(rootUnit, "start")}
	needs := map[string][]string{} // unit -> units it Requires= or BindsTo=
	queue := []*unit{rootUnit}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		spec := u.loadedSpec()
		if spec == nil {
			continue // its own start fails with the reason
		}
		pull := func(dep string, hard bool) error {
			if !takesPart(dep) {
				return nil
			}
			du, err := m.unitFor(dep)
			if err != nil {
				if hard {
					return fmt.Errorf("unit %s requires %s: %w", u.name, dep, err)
				}
				return nil // a wanted unit may be missing
			}
			if hard {
				needs[u.name] = append(needs[u.name], dep)
			}
			if starts[dep] == nil {
				starts[dep] = newJob(du, "start")
				queue = append(queue, du)
			}
			return nil
		}
		for _, dep := range slices.Concat(spec.Requires, spec.BindsTo) {
			if err := pull(dep, true); err != nil {
				return nil, nil, err
			}
		}
		for _, dep := range spec.Wants {
			pull(dep, false)
		}
	}
	// Conflicts, declared on either side.
	stops := map[string]*job{}
	m.mu.Lock()
	all := make([]*unit, 0, len(m.units))
	for _, u := range m.units {
		all = append(all, u)
	}
	m.mu.Unlock()
	for _, other := range all {
		if _, starting := starts[other.name]; starting {
			continue
		}
		ospec := other.loadedSpec()
		for sname, sj := range starts {
			sspec := sj.u.loadedSpec()
			conflict := (ospec != nil && slices.Contains(ospec.Conflicts, sname)) ||
				(sspec != nil && slices.Contains(sspec.Conflicts, other.name))
			if conflict && stops[other.name] == nil {
				stops[other.name] = newJob(other, "stop")
			}
		}
	}
	for sname, sj := range starts {
		if spec := sj.u.loadedSpec(); spec != nil {
			for _, c := range spec.Conflicts {
				if _, both := starts[c]; both {
					return nil, nil, fmt.Errorf("unit %s: conflicts with %s, which the same start pulls in", sname, c)
				}
			}
		}
	}
	// Order: stops of conflicting units first, then starts by After= and
	// Before=.
	for _, sj := range starts {
		for _, st := range stops {
			sj.after = append(sj.after, st)
		}
	}
	for aname, aj := range starts {
		for bname, bj := range starts {
			if aname != bname && ordered(aj.u, bj.u) {
				aj.after = append(aj.after, bj)
				if slices.Contains(needs[aname], bname) {
					aj.needs = append(aj.needs, bj)
				}
			}
		}
	}
	jobs := slices.Concat(mapValues(stops), mapValues(starts))
	if cycle := findCycle(jobs); cycle != "" {
		return nil, nil, fmt.Errorf("unit %s: ordering cycle: %s", name, cycle)
	}
	return jobs, starts[name], nil
}

// ordered reports whether a starts after b: a has After=b or b has
// Before=a.
func ordered(a, b *unit) bool {
	aspec, bspec := a.loadedSpec(), b.loadedSpec()
	return (aspec != nil && slices.Contains(aspec.After, b.name)) || (bspec != nil && slices.Contains(bspec.Before, a.name))
}

// dependents are the units, other than the ones in names, whose loaded
// files Requires=, BindsTo= or PartOf= one of names, transitively.
func (m *Manager) dependents(names ...string) []*unit {
	m.mu.Lock()
	all := make([]*unit, 0, len(m.units))
	for _, u := range m.units {
		all = append(all, u)
	}
	m.mu.Unlock()
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	var out []*unit
	for grew := true; grew; {
		grew = false
		for _, u := range all {
			spec := u.loadedSpec()
			if in[u.name] || spec == nil {
				continue
			}
			for _, dep := range slices.Concat(spec.Requires, spec.BindsTo, spec.PartOf) {
				if in[dep] {
					in[u.name], grew = true, true
					out = append(out, u)
					break
				}
			}
		}
	}
	return out
}

func running(u *unit) bool {
	a := activeState(u.snapshot().Sub)
	return a != service.Inactive && a != service.Failed
}

// stopTransaction stops name and, first, the active units that depend on
// it. It returns the dependents it stopped.
func (m *Manager) stopTransaction(ctx context.Context, name string) ([]*unit, error) {
	rootUnit, err := m.unitFor(name)
	if err != nil {
		return nil, err
	}
	root := newJob(rootUnit, "stop")
	stops := map[string]*job{name: root}
	var stopped []*unit
	for _, d := range m.dependents(name) {
		if running(d) {
			stops[d.name] = newJob(d, "stop")
			stopped = append(stopped, d)
		}
	}
	// A unit stops before the units it starts after.
	for aname, aj := range stops {
		for bname, bj := range stops {
			if aname != bname && ordered(aj.u, bj.u) {
				bj.after = append(bj.after, aj)
			}
		}
	}
	jobs := mapValues(stops)
	if cycle := findCycle(jobs); cycle != "" {
		return nil, fmt.Errorf("unit %s: ordering cycle: %s", name, cycle)
	}
	runJobs(ctx, jobs)
	return stopped, root.err
}

// restartTransaction stops name and the units depending on it, then
// starts them again.
func (m *Manager) restartTransaction(ctx context.Context, name string) error {
	u, err := m.unitFor(name)
	if err != nil {
		return err
	}
	if !running(u) {
		return m.startTransaction(ctx, name)
	}
	if len(m.dependents(name)) == 0 {
		// Nothing else to stop: the unit restarts in one job, so that a
		// start waiting in it follows at once.
		return u.ask(ctx, "restart", nil)
	}
	stopped, err := m.stopTransaction(ctx, name)
	if err != nil {
		return err
	}
	if err := m.startTransaction(ctx, name); err != nil {
		return err
	}
	for _, d := range stopped {
		if err := m.startTransaction(ctx, d.name); err != nil {
			return err
		}
	}
	return nil
}

// runJobs runs jobs, each once the jobs it is ordered after are done, a
// start whose needed unit failed not at all.
func runJobs(ctx context.Context, jobs []*job) {
	for _, j := range jobs {
		go func() {
			defer close(j.done)
			for _, a := range j.after {
				select {
				case <-a.done:
				case <-ctx.Done():
					j.err = ctx.Err()
					return
				}
			}
			for _, n := range j.needs {
				if n.err != nil {
					j.u.m.logger.Append(j.u.name, fmt.Sprintf("Dependency failed for %s.", j.u.name))
					j.err = fmt.Errorf("unit %s: %w: dependency %s did not start", j.u.name, service.ErrFailed, n.u.name)
					return
				}
			}
			j.err = j.u.ask(ctx, j.kind, nil)
		}()
	}
	for _, j := range jobs {
		<-j.done
	}
}

// findCycle returns a cycle of the jobs' ordering, "" if there is none.
func findCycle(jobs []*job) string {
	const (
		unseen = iota
		onPath
		finished
	)
	state := map[*job]int{}
	var path []*job
	var visit func(j *job) string
	visit = func(j *job) string {
		switch state[j] {
		case onPath:
			i := slices.Index(path, j)
			var names []string
			for _, p := range path[i:] {
				names = append(names, p.u.name)
			}
			return strings.Join(append(names, j.u.name), " after ")
		case finished:
			return ""
		}
		state[j] = onPath
		path = append(path, j)
		for _, a := range j.after {
			if c := visit(a); c != "" {
				return c
			}
		}
		path = path[:len(path)-1]
		state[j] = finished
		return ""
	}
	for _, j := range jobs {
		if c := visit(j); c != "" {
			return c
		}
	}
	return ""
}

// propagate acts on a unit's change for the units bound to it: a unit
// that BindsTo= one that went inactive or failed is stopped.
func (m *Manager) propagate(st service.UnitState) {
	if st.Active != service.Inactive && st.Active != service.Failed {
		return
	}
	m.mu.Lock()
	closed := m.closed
	var bound []*unit
	for _, u := range m.units {
		if spec := u.loadedSpec(); spec != nil && slices.Contains(spec.BindsTo, st.Name) {
			bound = append(bound, u)
		}
	}
	m.mu.Unlock()
	if closed {
		return
	}
	for _, u := range bound {
		if running(u) {
			u.m.logger.Append(u.name, fmt.Sprintf("Stopping %s: it is bound to %s, which is %s.", u.name, st.Name, st.Active))
			go u.ask(context.Background(), "stop", nil)
		}
	}
}

func mapValues(m map[string]*job) []*job {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*job, 0, len(m))
	for _, n := range names {
		out = append(out, m[n])
	}
	return out
}
