package builtin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// record is what the manager keeps of a unit in the run directory
// (RUNDIR/units/NAME.json), rewritten whole at each change of the unit's
// state, for the next daemon to take the unit over: the unit file the
// run started from, its state, its cgroup and its main process, named by
// PID and start time so that a reused PID is not taken for it.
type record struct {
	Name      string    `json:"name"`
	Unit      []byte    `json:"unit"`
	Hash      string    `json:"hash,omitempty"`
	Sub       string    `json:"subState"`
	Result    Result    `json:"result"`
	MainExit  Exit      `json:"mainExit"`
	Since     time.Time `json:"since"`
	Status    string    `json:"status,omitempty"`
	MainPID   int       `json:"mainPID,omitempty"`
	MainStart uint64    `json:"mainStartTime,omitempty"`
	Cgroup    string    `json:"cgroup,omitempty"`
}

func (u *unit) recordPath() string { return filepath.Join(u.m.unitsDir(), u.name+".json") }

// saveRecord writes the unit's record atomically.
func (u *unit) saveRecord() {
	rec := record{
		Name:     u.name,
		Unit:     u.run.content,
		Sub:      u.sub,
		Result:   u.result,
		MainExit: u.mainExit,
		Since:    u.since,
		Status:   u.status,
	}
	if u.run.spec != nil {
		rec.Hash = u.run.spec.Hash
	}
	if u.main != nil {
		rec.MainPID, rec.MainStart = u.main.pid, u.main.startTime
	}
	if u.cg != nil {
		rec.Cgroup = u.cg.path
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = replaceFile(u.recordPath(), data)
	}
	if err != nil {
		u.logf("Failed to save the unit's state: %v", err)
	}
}

func (u *unit) removeRecord() { os.Remove(u.recordPath()) }

// replaceFile replaces path with data by a rename, so that a daemon
// killed meanwhile leaves the old record or the new. Records are not
// synced to disk: they live in the run directory (a tmpfs) and matter
// only as long as the processes they name, which a crash of the machine
// ends too.
func replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readRecords reads the records a previous daemon left in dir.
func readRecords(dir string) (map[string]*record, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*record{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil || rec.Name != name {
			return nil, fmt.Errorf("unit record %s: malformed", e.Name())
		}
		out[name] = &rec
	}
	return out, nil
}

// adopt takes the unit over from the record a previous daemon left:
// a running unit keeps running, watched again (its cgroup, its main
// process if it still is the recorded one, its output FIFOs, its
// notification socket); a unit caught between states is brought to
// rest. It runs before the unit's loop starts.
//
// What is lost: a control process (ExecStartPre=, ExecStop=...) is not
// waited for by a new daemon, so a unit caught in such a step has its
// processes killed, and is started again if it was starting; and the
// exit status of a main process that is not the new daemon's child is
// unknown (see mainResult).
func (u *unit) adopt(rec *record) {
	def := u.m.define(u.name, rec.Unit)
	if def.spec == nil {
		return
	}
	u.run = def
	u.sub, u.result, u.mainExit, u.since, u.status = rec.Sub, rec.Result, rec.MainExit, rec.Since, rec.Status
	if u.result == "" {
		u.result = ResultSuccess
	}
	spec := def.spec
	switch activeState(rec.Sub) {
	case "", "inactive", "failed":
		if _, ok := activeStates[rec.Sub]; !ok {
			u.sub = subDead
		}
		u.publish()
		return
	}
	cgPath := rec.Cgroup
	if cgPath == "" {
		cgPath = u.m.cgroupPath(u.name)
	}
	cg, err := openUnitCgroup(cgPath)
	if err != nil {
		u.logf("Cannot take the unit over: %v", err)
		u.sub, u.result = subFailed, ResultResources
		u.publish()
		return
	}
	u.cg = cg
	if err := u.reattach(spec); err != nil {
		u.logf("Cannot take the unit over: %v", err)
	}
	main := adoptProcess(rec.MainPID, rec.MainStart)
	switch {
	case rec.Sub == subRunning || rec.Sub == subReload:
		u.sub = subRunning
		switch {
		case main != nil:
			u.main = main
			u.watch(main)
			u.logf("Took over running unit, main PID %d.", main.pid)
		case rec.MainPID == 0 && spec.Type == Forking && !cg.empty():
			u.startPoll(time.Second)
			u.logf("Took over running unit without a main process.")
		default:
			u.logf("Main process %d ended while no manager watched it.", rec.MainPID)
			u.later = append(u.later, func() { u.mainExited(Exit{}) })
		}
	case rec.Sub == subExited:
	case rec.Sub == subStart && spec.Type == Notify && main != nil:
		u.main = main
		u.watch(main)
		u.arm(spec.TimeoutStart)
		u.logf("Took over starting unit, main PID %d, waiting for READY=1.", main.pid)
	case rec.Sub == subAutoRestart:
		u.arm(spec.RestartDelay)
	default:
		if main != nil {
			main.close()
		}
		u.logf("Unit was in state %s when the manager stopped; killing its processes.", rec.Sub)
		cg.kill()
		cg.waitEmpty(5 * time.Second)
		wasStarting := activeState(rec.Sub) == "activating"
		u.sub = subDead
		if u.result != ResultSuccess {
			u.sub = subFailed
		}
		if wasStarting {
			u.later = append(u.later, u.beginStart)
		}
	}
	u.publish()
}

// reattach opens again what a running unit's processes use: the output
// FIFOs, the notification socket, and the environment its control
// processes get.
func (u *unit) reattach(spec *Spec) error {
	out, err := openOutput(u.m.unitsDir(), u.name, u.m.logger)
	if err != nil {
		return err
	}
	u.out = out
	if spec.Type == Notify || spec.NotifyAccess != NotifyNone {
		sock, err := listenNotify(notifySocketPath(u.m.unitsDir(), u.name))
		if err != nil {
			return err
		}
		u.serveNotify(sock)
	}
	env, err := u.environment(spec)
	if err != nil {
		u.logf("%v", err)
	}
	u.env = env
	return nil
}
