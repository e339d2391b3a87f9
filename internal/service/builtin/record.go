package builtin

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// record is what the manager keeps of a unit in the run directory
// (RUNDIR/units/NAME.json), for the next daemon to take the unit over:
// the unit file the run started from, its state, its cgroup and its main
// process, named by PID and start time so that a reused PID is not taken
// for it.
//
// It is rewritten when its content changes: when the unit's sub-state,
// result, main process or status text changes, or a run starts from
// another unit file. A publication that leaves it as it was (a unit file
// loaded for the next run, an enabling) writes nothing. The usual start
// writes it twice and the usual stop twice, and the next daemon needs
// each: when the run begins (a daemon killed while the unit starts
// leaves a record saying so, and the next one cleans the cgroup and
// starts the unit again), when it runs (its main process), when it
// begins to stop (the next daemon finishes the stop rather than taking
// the unit for a running one, or restarting it), and when it is at rest
// (dead or failed, and how). The steps of a stop that find nothing to
// wait for (the main process went at the first signal) are not states
// the unit rests in, and write nothing.
//
// A write is atomic for a reader: the record is written in place into a
// spare file beside it (NAME.json.tmp, which holds the record before
// last), and the two trade names in one rename (RENAME_EXCHANGE), so that
// a daemon killed at any point leaves the old record or the new, whole.
// That costs an open of an existing file, a write and a rename, not the
// creation of a file and the removal of another, which on the ext4 at
// hand cost forty times as much (a new record is made with its spare).
//
// Records are not synced: the rename is atomic without fsync, which is
// all the successor of a killed daemon needs. fsync would guard only
// against losing the machine, and that empties the run directory (/run,
// a tmpfs) and ends the processes the records name anyway. Where RunDir
// is on a disk, a record that comes back older after a crash names
// processes that are gone, and is not taken for new ones: their start
// times differ.
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

// saveRecord writes the unit's record, unless it is the one written last.
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
	if err != nil {
		u.logf("Failed to save the unit's state: %v", err)
		return
	}
	h := fnv.New64a()
	h.Write(data)
	sum := h.Sum64()
	if sum == u.recorded {
		return
	}
	if err := exchangeFile(u.recordPath(), data); err != nil {
		u.logf("Failed to save the unit's state: %v", err)
		return
	}
	u.recorded = sum
}

func (u *unit) removeRecord() {
	os.Remove(u.recordPath())
	os.Remove(u.recordPath() + ".tmp")
	u.recorded = 0
}

// exchangeFile makes data path's content, atomically for a reader: data
// is written into the spare file path.tmp, which then trades names with
// path (see record). A new record is the spare renamed, and gets a spare
// of its own at once, so that the writes that follow make no file. On a
// filesystem that cannot exchange names, every write is the spare
// renamed over path.
func exchangeFile(path string, data []byte) error {
	spare := path + ".tmp"
	if err := writeSpare(spare, data); err != nil {
		return err
	}
	err := unix.Renameat2(unix.AT_FDCWD, spare, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	if err == nil {
		return nil
	}
	if err := os.Rename(spare, path); err != nil {
		return err
	}
	if errors.Is(err, unix.ENOENT) {
		writeSpare(spare, data)
	}
	return nil
}

// writeSpare writes data into the file at spare, made if need be, in
// place.
func writeSpare(spare string, data []byte) error {
	fd, err := unix.Open(spare, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "open", Path: spare, Err: err}
	}
	err = writeAllAt(fd, data)
	var st unix.Stat_t
	if err == nil && unix.Fstat(fd, &st) == nil && st.Size > int64(len(data)) {
		err = unix.Ftruncate(fd, int64(len(data)))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: spare, Err: err}
	}
	return nil
}

// writeAllAt writes data at the start of fd.
func writeAllAt(fd int, data []byte) error {
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// replaceFile replaces path with data by a rename, so that a daemon
// killed meanwhile leaves the old file or the new; not synced, as
// records are not (see record).
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
	cg, err := u.m.shared.cgroup(cgPath)
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
	out, err := openOutput(u.m.unitsDir(), u.name, u.m.logger, u.m.shared.poller)
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
