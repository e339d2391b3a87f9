package systemd

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"atoll.dev/atoll/internal/service"
)

// State reports one unit as systemd sees it. A name this backend did not
// load, nor the template of, reads not-found whatever systemd has under
// that name, so that the host's own units stay out of sight.
func (m *Manager) State(ctx context.Context, name string) (service.UnitState, error) {
	if err := checkName(name); err != nil {
		return service.UnitState{}, err
	}
	f, ok := m.fileOf(name)
	if !ok || isTemplate(name) {
		return notFound(name), nil
	}
	if err := m.checkOpen(); err != nil {
		return service.UnitState{}, err
	}
	unitProps, err := m.conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return service.UnitState{}, fmt.Errorf("state of %s: %w", name, mapError(err))
	}
	var typeProps map[string]any
	if iface := typeInterface(name); iface != "" {
		if typeProps, err = m.conn.GetUnitTypePropertiesContext(ctx, name, iface); err != nil {
			return service.UnitState{}, fmt.Errorf("state of %s: %w", name, mapError(err))
		}
	}
	st := stateFromProperties(name, unitProps, typeProps)
	st.Hash = f.hash
	return st, nil
}

func notFound(name string) service.UnitState {
	return service.UnitState{Name: name, Load: service.NotFound, Active: service.Inactive, Sub: "dead"}
}

// List reports the units this backend loaded, and the instances of its
// templates that systemd has and that are not inactive or are enabled,
// sorted by name. Templates themselves are not units and are not listed.
func (m *Manager) List(ctx context.Context) ([]service.UnitState, error) {
	m.mu.Lock()
	var names, templates []string
	for name := range m.files {
		if isTemplate(name) {
			templates = append(templates, name)
		} else {
			names = append(names, name)
		}
	}
	m.mu.Unlock()
	out := make([]service.UnitState, 0, len(names))
	for _, name := range names {
		st, err := m.State(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	for _, t := range templates {
		instances, err := m.instances(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("list instances of %s: %w", t, err)
		}
		for _, name := range instances {
			if slices.Contains(names, name) {
				continue
			}
			st, err := m.State(ctx, name)
			if err != nil {
				return nil, err
			}
			if st.Active != service.Inactive || m.isEnabled(name) {
				out = append(out, st)
			}
		}
	}
	slices.SortFunc(out, func(a, b service.UnitState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// typeInterface names the D-Bus interface of a unit's type whose
// properties a UnitState shows: Service for a service, Timer for a timer,
// none for the others.
func typeInterface(name string) string {
	switch {
	case strings.HasSuffix(name, ".service"):
		return "Service"
	case strings.HasSuffix(name, ".timer"):
		return "Timer"
	}
	return ""
}

// stateFromProperties maps a unit's D-Bus properties (its Unit
// interface's and those of its type's interface) to a UnitState.
func stateFromProperties(name string, unitProps, typeProps map[string]any) service.UnitState {
	st := service.UnitState{Name: name, Result: "success"}
	applyUnitProperties(&st, unitProps)
	applyTypeProperties(&st, typeProps)
	return st
}

// applyTypeProperties sets what the unit type's interface says.
func applyTypeProperties(st *service.UnitState, props map[string]any) {
	switch typeInterface(st.Name) {
	case "Service":
		applyServiceProperties(st, props)
	case "Timer":
		applyTimerProperties(st, props, time.Now(), monotonicNow())
	}
}

// applyTimerProperties sets what systemctl list-timers shows: the next
// elapse on the wall clock (the earlier of NextElapseUSecRealtime and
// NextElapseUSecMonotonic, the latter shifted from CLOCK_MONOTONIC by the
// clocks' difference now, as systemctl does), the last trigger and the
// result. Zero and USEC_INFINITY mean none.
func applyTimerProperties(st *service.UnitState, props map[string]any, now time.Time, monoNow time.Duration) {
	set := func(key string) (uint64, bool) {
		v, ok := props[key].(uint64)
		return v, ok && v != 0 && v != math.MaxUint64
	}
	if _, ok := props["NextElapseUSecRealtime"]; ok {
		st.NextElapse = time.Time{}
		if v, ok := set("NextElapseUSecRealtime"); ok {
			st.NextElapse = time.UnixMicro(int64(v))
		}
		if v, ok := set("NextElapseUSecMonotonic"); ok {
			mono := now.Add(time.Duration(v)*time.Microsecond - monoNow)
			if st.NextElapse.IsZero() || mono.Before(st.NextElapse) {
				st.NextElapse = mono
			}
		}
	}
	if _, ok := props["LastTriggerUSec"]; ok {
		st.LastTrigger = time.Time{}
		if v, ok := set("LastTriggerUSec"); ok {
			st.LastTrigger = time.UnixMicro(int64(v))
		}
	}
	if v, ok := props["Result"].(string); ok && v != "" {
		st.Result = v
	}
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of systemd's monotonic
// timestamps.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// applyUnitProperties sets what the Unit interface's properties say,
// leaving what they do not carry.
func applyUnitProperties(st *service.UnitState, props map[string]any) {
	if v, ok := props["LoadState"].(string); ok {
		st.Load = service.LoadState(v)
	}
	if v, ok := props["ActiveState"].(string); ok {
		st.Active = service.ActiveState(v)
	}
	if v, ok := props["SubState"].(string); ok {
		st.Sub = v
	}
	if v, ok := props["Description"].(string); ok {
		st.Description = v
	}
	if v, ok := props["UnitFileState"].(string); ok {
		st.Enabled = fileState(v)
	}
	if v, ok := props["Triggers"].([]string); ok && strings.HasSuffix(st.Name, ".timer") {
		st.Triggers = strings.Join(v, " ")
	}
	if v, ok := props["StateChangeTimestamp"].(uint64); ok {
		st.Since = time.Time{}
		if v != 0 {
			st.Since = time.UnixMicro(int64(v))
		}
	}
}

// applyServiceProperties sets what the Service interface's properties
// say.
func applyServiceProperties(st *service.UnitState, props map[string]any) {
	if v, ok := props["MainPID"].(uint32); ok {
		st.MainPID = int(v)
	}
	if v, ok := props["Result"].(string); ok && v != "" {
		st.Result = v
	}
	if v, ok := props["ExecMainCode"].(int32); ok {
		st.ExitCode = exitCode(v)
	}
	if v, ok := props["ExecMainStatus"].(int32); ok {
		st.ExitStatus = int(v)
	}
	if v, ok := props["ControlGroup"].(string); ok {
		st.Cgroup = v
	}
	if v, ok := props["StatusText"].(string); ok {
		st.Status = v
	}
}

// exitCode names a waitid(2) si_code as systemd does in ExecMainCode.
func exitCode(code int32) string {
	switch code {
	case 1: // CLD_EXITED
		return "exited"
	case 2: // CLD_KILLED
		return "killed"
	case 3: // CLD_DUMPED
		return "dumped"
	}
	return ""
}

// fileState is systemd's UnitFileState with the runtime forms read as the
// plain ones: this backend enables units in /run only because it puts
// them back there itself after a reboot, so "enabled-runtime" is enabled
// for good.
func fileState(s string) string {
	if base, ok := strings.CutSuffix(s, "-runtime"); ok {
		return base
	}
	return s
}
