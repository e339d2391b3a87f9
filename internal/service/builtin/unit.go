package builtin

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"atoll.dev/atoll/internal/service"
)

// definition is a unit file as loaded.
type definition struct {
	content  []byte
	spec     *Spec // nil when the file does not make a service
	err      error // why spec is nil
	load     service.LoadState
	warnings []string
}

// request is an operation asked of a unit's loop.
type request struct {
	kind  string // start, stop, restart, reload, load, unload
	def   *definition
	reply chan error
}

// exitEvent says a watched process ended.
type exitEvent struct {
	p    *process
	exit Exit
}

// notifyEvent is a message from the unit's notification socket.
type notifyEvent struct{ msg notifyMsg }

// errDetached ends what a closing manager leaves unanswered.
var errDetached = errors.New("builtin: manager closed")

// unit is one service and the goroutine that runs it: every change of
// its state happens on that goroutine (loop), which follows systemd's
// state machine for services. Other goroutines only send it requests
// and events, and read its published state.
type unit struct {
	m    *Manager
	name string

	reqs   chan request
	events chan any
	quit   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	snap   service.UnitState
	loaded *definition // def, for other goroutines

	// Owned by the loop.
	def, run   *definition
	sub        string
	result     Result
	mainExit   Exit
	main       *process
	mainCmd    *Command
	control    *process
	controlCmd *Command
	queue      []Command // commands left of the Exec*= list running
	cg         *unitCgroup
	out        *unitOutput
	notify     *notifySocket
	env        []string
	ident      identity
	identErr   error
	timer      Timer
	timerC     <-chan time.Time
	poll       *time.Ticker
	pollC      <-chan time.Time
	waitPID    bool // a forking service's PID file is awaited
	later      []func()
	since      time.Time
	status     string

	startWaiters, stopWaiters, reloadWaiters []chan error
	pendingStart                             bool // start once stopped (restart, or a start while stopping)
	forbidRestart                            bool // stopped on request: no automatic restart

	limitBegin time.Time
	limitCount int

	// cgEmpty says the cgroup was found empty with no main or control
	// process, and no process was started since: only the unit's own
	// processes fork into it, so the steps after need not look again.
	cgEmpty bool
	// sent are the processes the signalling state sent its signal to.
	sent []int
	// recorded is a hash of the record written last (record.go).
	recorded uint64
}

func newUnit(m *Manager, name string, def *definition) *unit {
	return &unit{
		m:      m,
		name:   name,
		def:    def,
		run:    def,
		loaded: def,
		sub:    subDead,
		reqs:   make(chan request),
		events: make(chan any, 16),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// logf appends a line about the unit to its journal.
func (u *unit) logf(format string, args ...any) {
	u.m.logger.Append(u.name, fmt.Sprintf(format, args...))
}

func (u *unit) spec() *Spec { return u.run.spec }

func (u *unit) description() string {
	if s := u.run.spec; s != nil && s.Description != "" {
		return s.Description
	}
	return u.name
}

// loop runs the unit until the manager closes or the unit is unloaded.
func (u *unit) loop() {
	defer close(u.done)
	for {
		for len(u.later) > 0 {
			f := u.later[0]
			u.later = u.later[1:]
			f()
		}
		select {
		case r := <-u.reqs:
			if u.handle(r) {
				return
			}
		case e := <-u.events:
			switch e := e.(type) {
			case exitEvent:
				u.onExit(e)
			case notifyEvent:
				u.onNotify(e.msg)
			}
		case <-u.timerC:
			u.timerC = nil
			u.onTimeout()
		case <-u.pollC:
			u.check()
		case <-u.quit:
			u.detach()
			return
		}
	}
}

// handle acts on a request; true ends the loop (the unit is unloaded).
func (u *unit) handle(r request) bool {
	switch r.kind {
	case "load":
		u.def = r.def
		u.mu.Lock()
		u.loaded = r.def
		u.mu.Unlock()
		if activeState(u.sub) == service.Inactive || activeState(u.sub) == service.Failed {
			u.run = r.def
		}
		u.publish()
		r.reply <- nil
	case "unload":
		if a := activeState(u.sub); a != service.Inactive && a != service.Failed {
			r.reply <- fmt.Errorf("unit %s: %w", u.name, service.ErrRunning)
			return false
		}
		u.disarm()
		if u.out != nil {
			u.out.remove()
		}
		if u.notify != nil {
			u.notify.remove()
		}
		u.removeRecord()
		r.reply <- nil
		return true
	case "start":
		u.requestStart(r.reply)
	case "stop":
		u.requestStop(r.reply)
	case "restart":
		switch activeState(u.sub) {
		case service.Inactive, service.Failed:
			u.requestStart(r.reply)
		default:
			if u.sub == subAutoRestart {
				u.requestStart(r.reply)
				break
			}
			u.startWaiters = append(u.startWaiters, r.reply)
			u.pendingStart = true
			u.stop()
		}
	case "reload":
		u.requestReload(r.reply)
	}
	return false
}

func (u *unit) requestStart(reply chan error) {
	switch activeState(u.sub) {
	case service.Active, service.Reloading:
		reply <- nil
	case service.Activating:
		u.startWaiters = append(u.startWaiters, reply)
		if u.sub == subAutoRestart {
			u.disarm()
			u.beginStart()
		}
	case service.Deactivating:
		u.startWaiters = append(u.startWaiters, reply)
		u.pendingStart = true
	default:
		u.startWaiters = append(u.startWaiters, reply)
		u.beginStart()
	}
}

// requestStop stops the unit and cancels a start waiting for the stop to
// end (a restart's), as systemd's stop job replaces a queued start.
func (u *unit) requestStop(reply chan error) {
	u.stopWaiters = append(u.stopWaiters, reply)
	u.pendingStart = false
	u.resolve(&u.startWaiters, fmt.Errorf("unit %s: start canceled by a stop", u.name))
	u.stop()
}

// stop brings the unit down from whatever state it is in.
func (u *unit) stop() {
	switch u.sub {
	case subDead, subFailed:
		u.resolve(&u.stopWaiters, nil)
		if u.pendingStart {
			u.pendingStart = false
			u.beginStart()
		}
	case subAutoRestart:
		u.disarm()
		u.forbidRestart = true
		u.logf("Stopped %s.", u.description())
		u.setSub(subDead)
		u.resolve(&u.stopWaiters, nil)
		if u.pendingStart {
			u.pendingStart = false
			u.beginStart()
		}
	case subStartPre, subStart, subStartPost:
		u.forbidRestart = true
		u.logf("Stopping %s...", u.description())
		u.enterSignal(subStopSigterm, ResultSuccess)
	case subRunning, subExited, subReload:
		u.forbidRestart = true
		u.resolve(&u.reloadWaiters, fmt.Errorf("unit %s: stopped while reloading", u.name))
		u.logf("Stopping %s...", u.description())
		u.enterStop(ResultSuccess)
	default: // already stopping
		u.forbidRestart = true
	}
}

func (u *unit) requestReload(reply chan error) {
	spec := u.spec()
	switch {
	case u.sub != subRunning && u.sub != subExited:
		reply <- fmt.Errorf("unit %s is not active, cannot reload", u.name)
	case spec == nil || len(spec.ExecReload) == 0:
		reply <- fmt.Errorf("unit %s: reload is not supported (no ExecReload=)", u.name)
	default:
		u.reloadWaiters = append(u.reloadWaiters, reply)
		u.logf("Reloading %s...", u.description())
		u.runControl(spec.ExecReload, subReload, spec.TimeoutStart)
	}
}

// resolve answers every waiter of a list.
func (u *unit) resolve(waiters *[]chan error, err error) {
	for _, w := range *waiters {
		w <- err
	}
	*waiters = nil
}

func (u *unit) failed() error {
	return fmt.Errorf("unit %s: %w (result %s)", u.name, service.ErrFailed, u.result)
}

// beginStart starts the unit with the definition loaded last.
func (u *unit) beginStart() {
	u.run = u.def
	spec := u.spec()
	if spec == nil {
		err := fmt.Errorf("unit %s: %w", u.name, u.run.err)
		if u.run.load == service.Masked {
			err = fmt.Errorf("unit %s is masked", u.name)
		}
		u.resolve(&u.startWaiters, err)
		u.publish()
		return
	}
	if ok, c := checkConditions(spec.Conditions); !ok {
		u.logf("%s was skipped because of an unmet condition check (%s).", u.description(), describeCondition("Condition", c))
		u.setSub(subDead)
		u.resolve(&u.startWaiters, nil)
		return
	}
	if ok, c := checkConditions(spec.Asserts); !ok {
		u.logf("Assertion failed for %s: %s.", u.description(), describeCondition("Assert", c))
		u.resolve(&u.startWaiters, fmt.Errorf("unit %s: assertion failed: %s", u.name, describeCondition("Assert", c)))
		u.publish()
		return
	}
	if !u.startAllowed(spec) {
		u.logf("Start request repeated too quickly.")
		// As systemd: a failure that led here stays the result.
		u.mergeResult(ResultStartLimitHit)
		u.logf("Failed with result '%s'.", u.result)
		u.logf("Failed to start %s.", u.description())
		u.setSub(subFailed)
		u.resolve(&u.startWaiters, u.failed())
		return
	}
	u.result, u.mainExit, u.status = ResultSuccess, Exit{}, ""
	u.forbidRestart, u.waitPID = false, false
	u.logf("Starting %s...", u.description())
	if err := u.prepare(spec); err != nil {
		u.logf("%v", err)
		u.result = ResultResources
		u.logf("Failed with result '%s'.", u.result)
		u.logf("Failed to start %s.", u.description())
		u.setSub(subFailed)
		u.resolve(&u.startWaiters, u.failed())
		u.afterDead()
		return
	}
	u.enterStartPre()
}

// startAllowed applies StartLimitIntervalSec= and StartLimitBurst= as
// systemd's rate limit does.
func (u *unit) startAllowed(spec *Spec) bool {
	if spec.StartLimitInterval == 0 || spec.StartLimitBurst == 0 {
		return true
	}
	now := u.m.clock.Now()
	if u.limitBegin.IsZero() || now.Sub(u.limitBegin) > spec.StartLimitInterval {
		u.limitBegin, u.limitCount = now, 1
		return true
	}
	u.limitCount++
	return u.limitCount <= spec.StartLimitBurst
}

// prepare makes what a run needs: the cgroup, the output FIFOs, the
// notification socket, the environment and the credentials.
func (u *unit) prepare(spec *Spec) error {
	if u.cg == nil || u.cg.path != u.m.cgroupPath(u.name) {
		cg, err := u.m.shared.cgroup(u.m.cgroupPath(u.name))
		if err != nil {
			return err
		}
		u.cg = cg
	}
	// The output FIFOs, made at the unit's first start, are made while
	// the cgroup is: on a disk's filesystem, making a file mostly waits
	// for its journal.
	made := make(chan error, 1)
	if u.out == nil {
		go func() {
			out, err := openOutput(u.m.unitsDir(), u.name, u.m.logger, u.m.shared.poller)
			u.out = out
			made <- err
		}()
	} else {
		made <- nil
	}
	cgErr := u.cg.create()
	if err := cmp.Or(cgErr, <-made); err != nil {
		return err
	}
	if !u.cg.empty() {
		pids, _ := u.cg.pids()
		u.logf("Found left-over processes %v in control group while starting unit. Ignoring.", pids)
	}
	if spec.Type == Notify || spec.NotifyAccess != NotifyNone {
		if u.notify == nil {
			sock, err := listenNotify(notifySocketPath(u.m.unitsDir(), u.name))
			if err != nil {
				return err
			}
			u.serveNotify(sock)
		}
	} else if u.notify != nil {
		u.notify.remove()
		u.notify = nil
	}
	env, err := u.environment(spec)
	u.env = env
	return err
}

// environment looks the run's credentials up and makes its processes'
// environment, later settings overriding earlier ones as in systemd: the
// manager's, the run's own ($INVOCATION_ID, $NOTIFY_SOCKET, $USER and the
// like), Environment=, then the EnvironmentFile= files. A file that
// cannot be read is an error; the environment without it comes along.
func (u *unit) environment(spec *Spec) ([]string, error) {
	env := append([]string(nil), u.m.env...)
	env = append(env, "INVOCATION_ID="+newInvocationID())
	if u.notify != nil {
		env = append(env, "NOTIFY_SOCKET="+u.notify.path)
	}
	u.ident, u.identErr = lookupIdentity(spec.User, spec.Group)
	if spec.User != "" && u.identErr == nil {
		env = append(env, "USER="+u.ident.user, "LOGNAME="+u.ident.user)
		// As systemd: a home of / or /nonexistent and a nologin shell
		// are placeholders, and set nothing.
		if h := u.ident.home; h != "" && h != "/" && h != "/nonexistent" {
			env = append(env, "HOME="+h)
		}
		if sh := u.ident.shell; sh != "" && !strings.HasSuffix(sh, "/nologin") {
			env = append(env, "SHELL="+sh)
		}
	}
	env = mergeEnv(env, spec.Environment...)
	files, err := readEnvFiles(spec.EnvironmentFiles, func(msg string) { u.logf("%s", msg) })
	if err != nil {
		return env, fmt.Errorf("failed to load environment files: %w", err)
	}
	return mergeEnv(env, files...), nil
}

func newInvocationID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (u *unit) serveNotify(sock *notifySocket) {
	u.notify = sock
	err := sock.serve(u.m.shared.poller, func(msg notifyMsg, queued func()) {
		u.post(notifyEvent{msg}, queued)
	})
	if err != nil {
		u.logf("Cannot read the notification socket: %v", err)
	}
}

// spawn starts cmd in the unit's cgroup and watches it. A command that
// cannot start reads as a process that exited at once with systemd's
// status for the step that failed (203/EXEC, 200/CHDIR, 217/USER...).
func (u *unit) spawn(cmd Command, extraEnv ...string) (*process, *Exit) {
	spec := u.spec()
	fail := func(status int, format string, args ...any) (*process, *Exit) {
		u.logf("Failed to execute %s: %s", cmd.Path, fmt.Sprintf(format, args...))
		return nil, &Exit{Code: Exited, Status: status}
	}
	env := mergeEnv(u.env, extraEnv...)
	argv := cmd.Expand(env)
	path, err := resolveCommandPath(cmd.Path)
	if err != nil {
		return fail(exitExec, "%v", err)
	}
	if len(argv) == 0 {
		argv = []string{path}
	}
	var cred *syscall.Credential
	home := "/root"
	if !cmd.Privileged {
		if u.identErr != nil {
			return fail(exitUser, "%v", u.identErr)
		}
		cred = u.ident.cred
		if spec.User != "" {
			home = u.ident.home
		}
	}
	dir := spec.WorkingDirectory
	switch dir {
	case "":
		dir = "/"
	case "~":
		dir = home
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if !spec.WorkingDirectoryOptional {
			return fail(exitChdir, "working directory %s: not a directory", dir)
		}
		dir = "/"
	}
	stdout, stderr, err := u.out.writers()
	if err != nil {
		return fail(exitStdout, "%v", err)
	}
	defer stdout.Close()
	defer stderr.Close()
	u.cgEmpty = false
	p, err := startInCgroup(u.cg, procAttr{path: path, argv: argv, env: env, dir: dir, cred: cred, stdout: stdout, stderr: stderr})
	if err != nil {
		return fail(exitExec, "%v", err)
	}
	u.watch(p)
	return p, nil
}

// watch sends the process's end to the loop, from the manager's poller.
// A process that cannot be watched is killed: it must not run unwatched.
func (u *unit) watch(p *process) {
	w, err := u.m.shared.poller.newWatch(p.pidfd, p.pidfd.Name(), func() {
		if exit, ok := p.reap(false); ok {
			u.post(exitEvent{p: p, exit: exit}, nil)
			return
		}
		// Ended but not waitable yet: wait off the poller's goroutine.
		go func() {
			exit, _ := p.reap(true)
			u.post(exitEvent{p: p, exit: exit}, nil)
		}()
	})
	if err == nil {
		err = w.start()
	}
	if err != nil {
		u.logf("Cannot watch process %d, killing it: %v", p.pid, err)
		p.signal(syscall.SIGKILL)
		go func() {
			exit, _ := p.reap(true)
			u.post(exitEvent{p: p, exit: exit}, nil)
		}()
		return
	}
	p.watch = w
}

// post hands an event to the loop without waiting for it: from the
// poller, which must not block. The loop takes events in order while its
// queue has room; past that they wait on goroutines of their own. queued,
// if not nil, is called once the event is queued.
func (u *unit) post(e any, queued func()) {
	select {
	case u.events <- e:
		if queued != nil {
			queued()
		}
	default:
		quit := u.quit
		go func() {
			select {
			case u.events <- e:
			case <-quit:
			}
			if queued != nil {
				queued()
			}
		}()
	}
}

// controlEnv is what control processes get besides the unit's
// environment: $MAINPID, and in the stop steps how the service ended.
func (u *unit) controlEnv() []string {
	var env []string
	if u.main != nil {
		env = append(env, "MAINPID="+strconv.Itoa(u.main.pid))
	}
	switch u.sub {
	case subStop, subStopPost:
		env = append(env, "SERVICE_RESULT="+string(u.result))
		if u.mainExit.Code != "" {
			status := strconv.Itoa(u.mainExit.Status)
			if u.mainExit.Code != Exited {
				status = signalName(syscall.Signal(u.mainExit.Status))
			}
			env = append(env, "EXIT_CODE="+u.mainExit.Code, "EXIT_STATUS="+status)
		}
	}
	return env
}

// runControl runs cmds one after the other as the unit's control
// process, in state sub, each step bounded by timeout.
func (u *unit) runControl(cmds []Command, sub string, timeout time.Duration) {
	u.setSub(sub)
	u.arm(timeout)
	u.queue = cmds
	u.runNextControl()
}

func (u *unit) runNextControl() {
	cmd := u.queue[0]
	u.queue = u.queue[1:]
	u.controlCmd = &cmd
	p, fail := u.spawn(cmd, u.controlEnv()...)
	u.control = p
	if fail != nil {
		u.controlExited(*fail)
	}
}

func (u *unit) enterStartPre() {
	spec := u.spec()
	if len(spec.ExecStartPre) == 0 {
		u.enterStart()
		return
	}
	u.runControl(spec.ExecStartPre, subStartPre, spec.TimeoutStart)
}

func (u *unit) enterStart() {
	spec := u.spec()
	u.setSub(subStart)
	u.arm(spec.TimeoutStart)
	if spec.Type == Forking {
		u.queue = spec.ExecStart
		u.runNextControl()
		return
	}
	if len(spec.ExecStart) == 0 { // a oneshot with RemainAfterExit= and no command
		u.enterStartPost()
		return
	}
	u.queue = spec.ExecStart[1:]
	u.startMain(spec.ExecStart[0])
}

// startMain starts cmd as the main process; for Type=oneshot, the first
// of its commands.
func (u *unit) startMain(cmd Command) {
	spec := u.spec()
	u.mainCmd = &cmd
	p, fail := u.spawn(cmd)
	u.main = p
	if fail != nil {
		if spec.Type == Simple {
			// systemd reports a simple service started once it has
			// forked; failing to run the program is the main process's
			// exit, after.
			u.setSub(subRunning)
			u.resolve(&u.startWaiters, nil)
			u.mainExited(*fail)
			return
		}
		u.mainExited(*fail)
		return
	}
	switch spec.Type {
	case Simple, Exec:
		u.enterStartPost()
	}
	// notify waits for READY=1, oneshot for the command to exit.
}

func (u *unit) enterStartPost() {
	spec := u.spec()
	if len(spec.ExecStartPost) == 0 {
		u.enterRunning()
		return
	}
	u.runControl(spec.ExecStartPost, subStartPost, spec.TimeoutStart)
}

// enterRunning settles a started unit: running while its main process
// (or, for a forking service without a known main process, its cgroup)
// lives; else exited with RemainAfterExit=, else stopping.
func (u *unit) enterRunning() {
	spec := u.spec()
	u.disarm()
	alive := u.main != nil
	if !alive && spec.Type == Forking && !u.cg.empty() {
		alive = true
		u.startPoll(time.Second) // no main process to wait for: watch the cgroup
	}
	if alive {
		if u.sub != subRunning && u.sub != subReload {
			u.logf("Started %s.", u.description())
		}
		u.setSub(subRunning)
		u.resolve(&u.startWaiters, nil)
		return
	}
	if spec.RemainAfterExit {
		if u.sub != subExited {
			u.logf("Finished %s.", u.description())
		}
		u.setSub(subExited)
		u.resolve(&u.startWaiters, nil)
		return
	}
	u.enterStop(ResultSuccess)
}

// enterStop runs ExecStop=, then signals what is left.
func (u *unit) enterStop(f Result) {
	u.mergeResult(f)
	spec := u.spec()
	if len(spec.ExecStop) == 0 {
		u.enterSignal(subStopSigterm, ResultSuccess)
		return
	}
	u.runControl(spec.ExecStop, subStop, spec.TimeoutStop)
}

// enterSignal sends KillSignal= (the *-sigterm states) or SIGKILL (the
// *-sigkill states) to what KillMode= names, and waits for it to end,
// TimeoutStopSec= at most.
//
// The main and control processes get the signal first, through their
// pidfds. When the whole cgroup is to get it, one listing then says what
// else is there; only when it holds other processes is it frozen,
// listed again and signalled (unitCgroup.signal), so that the usual stop
// of a unit whose only process is its main one costs one listing, not a
// freezer round trip. A process the main one forks after the listing is
// signalled once the main one has ended (check); an empty cgroup is not
// looked at again by the later steps (cgEmpty).
func (u *unit) enterSignal(state string, f Result) {
	u.mergeResult(f)
	spec := u.spec()
	sig := u.stateSignal(state)
	sigkill := sig == syscall.SIGKILL
	wait := false
	u.sent = u.sent[:0]
	if spec.KillMode != KillNone {
		for _, p := range []*process{u.main, u.control} {
			if p == nil {
				continue
			}
			if err := p.signal(sig); err == nil {
				wait = true
			}
			if !sigkill {
				p.signal(syscall.SIGCONT)
			}
			u.sent = append(u.sent, p.pid)
		}
	}
	if u.killsCgroup(state) && !u.cgEmpty {
		pids, err := u.cg.pids()
		switch {
		case err != nil || u.unsignalled(pids):
			u.signalCgroup(sig)
			wait = true
		case len(pids) > 0:
			wait = true
		default: // the main and control processes, if any, have ended
			u.cgEmpty = true
		}
	}
	if !wait {
		u.signalled(state)
		return
	}
	u.setSub(state)
	u.arm(spec.TimeoutStop)
	u.startPoll(20 * time.Millisecond)
	u.check()
}

// signalCgroup sends sig to the processes of the cgroup it was not sent
// to yet in this state, the cgroup frozen meanwhile.
func (u *unit) signalCgroup(sig syscall.Signal) {
	pids, err := u.cg.signal(sig, u.sent...)
	if err != nil {
		u.logf("Failed to kill control group %s: %v", u.cg.path, err)
	}
	u.sent = append(u.sent, pids...)
}

// unsignalled reports whether pids hold a process the signalling state
// has not signalled.
func (u *unit) unsignalled(pids []int) bool {
	return slices.ContainsFunc(pids, func(pid int) bool { return !slices.Contains(u.sent, pid) })
}

// stateSignal is what a signalling state sends.
func (u *unit) stateSignal(state string) syscall.Signal {
	if state == subStopSigkill || state == subFinalSigkill {
		return syscall.SIGKILL
	}
	return u.spec().KillSignal
}

// killsCgroup says whether state signals and waits for the whole cgroup:
// always with KillMode=control-group, at the SIGKILL steps with mixed.
func (u *unit) killsCgroup(state string) bool {
	switch u.spec().KillMode {
	case KillControlGroup:
		return true
	case KillMixed:
		return state == subStopSigkill || state == subFinalSigkill
	}
	return false
}

// signalled moves on from a signalling state once nothing is left to
// wait for.
func (u *unit) signalled(state string) {
	sendKill := u.spec().SendSIGKILL
	switch state {
	case subStopSigterm:
		// On to SIGKILL even so: with KillMode=mixed it is what reaches
		// the rest of the cgroup.
		if sendKill {
			u.enterSignal(subStopSigkill, ResultSuccess)
			return
		}
		u.enterStopPost(ResultSuccess)
	case subStopSigkill:
		u.enterStopPost(ResultSuccess)
	case subFinalSigterm:
		if sendKill {
			u.enterSignal(subFinalSigkill, ResultSuccess)
			return
		}
		u.enterDead(ResultSuccess)
	default:
		u.enterDead(ResultSuccess)
	}
}

// check looks again at what the unit waits for without an event: the
// cgroup emptying in the signalling states, a main process unknown to the
// manager, a PID file.
func (u *unit) check() {
	switch u.sub {
	case subStopSigterm, subStopSigkill, subFinalSigterm, subFinalSigkill:
		if u.main != nil || u.control != nil {
			return
		}
		if u.killsCgroup(u.sub) && !u.cgEmpty {
			pids, err := u.cg.pids()
			if err != nil || len(pids) > 0 {
				if u.unsignalled(pids) {
					// Forked after the listing: they get the signal too.
					u.signalCgroup(u.stateSignal(u.sub))
				}
				return
			}
			u.cgEmpty = true
		}
		u.signalled(u.sub)
	case subRunning:
		if u.main == nil && u.cg.empty() {
			u.enterRunning()
		}
	case subStart:
		if !u.waitPID {
			return
		}
		if pid, err := u.readPIDFile(); err == nil {
			u.waitPID = false
			u.setMain(pid)
			u.enterStartPost()
			return
		}
		if u.cg.empty() {
			u.waitPID = false
			u.logf("Daemon never wrote its PID file. Failing.")
			u.enterSignal(subStopSigterm, ResultProtocol)
		}
	}
}

func (u *unit) enterStopPost(f Result) {
	u.mergeResult(f)
	spec := u.spec()
	if len(spec.ExecStopPost) == 0 {
		u.enterSignal(subFinalSigterm, ResultSuccess)
		return
	}
	u.runControl(spec.ExecStopPost, subStopPost, spec.TimeoutStop)
}

// enterDead ends a run: dead or failed, then perhaps auto-restart.
func (u *unit) enterDead(f Result) {
	u.mergeResult(f)
	u.disarm()
	for _, p := range []*process{u.main, u.control} {
		if p != nil {
			p.close()
		}
	}
	u.main, u.control, u.queue = nil, nil, nil
	if u.notify != nil {
		u.notify.remove()
		u.notify = nil
	}
	if u.cg != nil && (u.cgEmpty || u.cg.empty()) {
		if err := u.cg.destroy(); err != nil {
			u.logf("%v", err)
		}
	}
	u.cgEmpty, u.sent = false, nil
	var startErr error
	if u.result == ResultSuccess {
		u.logf("Deactivated successfully.")
		u.setSub(subDead)
	} else {
		u.logf("Failed with result '%s'.", u.result)
		u.setSub(subFailed)
		startErr = u.failed()
	}
	if !u.pendingStart {
		// A oneshot's start ends here; any other start that waits
		// failed.
		u.resolve(&u.startWaiters, startErr)
	}
	u.resolve(&u.stopWaiters, nil)
	u.resolve(&u.reloadWaiters, fmt.Errorf("unit %s: stopped while reloading", u.name))
	u.afterDead()
}

// afterDead starts the unit again if a start waits or Restart= says so.
func (u *unit) afterDead() {
	spec := u.spec()
	switch {
	case u.pendingStart:
		u.pendingStart = false
		u.beginStart()
	case !u.forbidRestart && spec != nil && u.result != ResultStartLimitHit && spec.ShouldRestart(u.result, u.mainExit):
		u.setSub(subAutoRestart)
		u.arm(spec.RestartDelay)
	}
}

func (u *unit) mergeResult(f Result) {
	if u.result == ResultSuccess {
		u.result = f
	}
}

// onExit handles the end of a watched process, once what it wrote is
// stored.
func (u *unit) onExit(e exitEvent) {
	defer e.p.close()
	if (e.p == u.main || e.p == u.control) && u.out != nil {
		u.out.flush(u.quit)
	}
	switch e.p {
	case u.main:
		u.main = nil
		u.mainExited(e.exit)
	case u.control:
		u.control = nil
		u.controlExited(e.exit)
	}
	// Anything else was main or control once (a main process replaced
	// by MAINPID=, a control process given up on after a timeout).
}

func (u *unit) mainExited(exit Exit) {
	spec := u.spec()
	f := spec.mainResult(exit)
	if u.mainCmd != nil && u.mainCmd.IgnoreFailure {
		f = ResultSuccess
	}
	u.mainExit = exit
	if exit.Code == "" {
		u.logf("Main process exited; its status is unknown (it was not this manager's child).")
	} else {
		u.logf("Main process exited, %s", exit)
	}
	switch u.sub {
	case subStart:
		switch spec.Type {
		case Oneshot:
			if f == ResultSuccess && len(u.queue) > 0 {
				next := u.queue[0]
				u.queue = u.queue[1:]
				u.startMain(next)
				return
			}
			if f == ResultSuccess {
				u.enterStartPost()
				return
			}
			u.enterSignal(subStopSigterm, f)
		case Notify:
			if f == ResultSuccess {
				u.logf("Main process exited before sending READY=1.")
				f = ResultProtocol
			}
			u.enterSignal(subStopSigterm, f)
		case Simple, Exec:
			u.enterSignal(subStopSigterm, f)
		default:
			u.mergeResult(f) // forking: its start process decides
		}
	case subRunning:
		u.mergeResult(f)
		u.enterRunning()
	case subStopSigterm, subStopSigkill, subFinalSigterm, subFinalSigkill:
		u.mergeResult(f)
		u.check()
	default:
		// start-post, reload, stop: the control process decides.
		u.mergeResult(f)
	}
	u.publish()
}

func (u *unit) controlExited(exit Exit) {
	f := controlResult(exit)
	if f != ResultSuccess {
		u.logf("Control process exited, %s", exit)
	}
	if u.controlCmd != nil && u.controlCmd.IgnoreFailure {
		f = ResultSuccess
	}
	if f == ResultSuccess && len(u.queue) > 0 && u.sub != subStopSigterm && u.sub != subStopSigkill {
		u.runNextControl()
		return
	}
	switch u.sub {
	case subStartPre:
		if f == ResultSuccess {
			u.enterStart()
		} else {
			u.enterSignal(subStopSigterm, f)
		}
	case subStart: // a forking service's ExecStart=
		if f != ResultSuccess {
			u.enterSignal(subStopSigterm, f)
			return
		}
		u.forked()
	case subStartPost:
		if f == ResultSuccess {
			u.enterRunning()
		} else {
			u.enterStop(f)
		}
	case subReload:
		u.reloaded(f)
	case subStop:
		u.enterSignal(subStopSigterm, f)
	case subStopPost:
		u.enterSignal(subFinalSigterm, f)
	case subStopSigterm, subStopSigkill, subFinalSigterm, subFinalSigkill:
		u.check()
	}
}

// forked finds a forking service's main process once its start process
// exited: from PIDFile=, else the only process left in the cgroup.
func (u *unit) forked() {
	spec := u.spec()
	if spec.PIDFile != "" {
		pid, err := u.readPIDFile()
		if err != nil {
			u.waitPID = true // it may come a little later; check polls
			u.startPoll(50 * time.Millisecond)
			return
		}
		u.setMain(pid)
	} else if spec.GuessMainPID {
		if pids, err := u.cg.pids(); err == nil && len(pids) == 1 {
			u.setMain(pids[0])
		}
	}
	u.enterStartPost()
}

// readPIDFile reads PIDFile=: a PID of a process in the unit's cgroup.
func (u *unit) readPIDFile() (int, error) {
	data, err := os.ReadFile(u.spec().PIDFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("PID file %s: not a PID", u.spec().PIDFile)
	}
	if !u.cg.contains(pid) {
		return 0, fmt.Errorf("PID file %s: process %d is not in the unit's cgroup", u.spec().PIDFile, pid)
	}
	return pid, nil
}

// setMain makes process pid the main process.
func (u *unit) setMain(pid int) {
	p, err := newProcess(pid, -1)
	if err != nil {
		u.logf("Cannot watch main process %d: %v", pid, err)
		return
	}
	u.main, u.mainCmd = p, nil
	u.watch(p)
	u.publish()
}

func (u *unit) reloaded(f Result) {
	if f == ResultSuccess {
		u.logf("Reloaded %s.", u.description())
		u.resolve(&u.reloadWaiters, nil)
	} else {
		u.logf("Reload failed with result '%s'.", f)
		u.resolve(&u.reloadWaiters, fmt.Errorf("unit %s: reload failed (result %s)", u.name, f))
	}
	u.enterRunning()
}

// onTimeout acts on the state's timer: a step took too long, or an
// automatic restart is due.
func (u *unit) onTimeout() {
	spec := u.spec()
	switch u.sub {
	case subStartPre, subStart:
		u.logf("%s operation timed out. Terminating.", u.sub)
		u.waitPID = false
		u.enterSignal(subStopSigterm, ResultTimeout)
	case subStartPost:
		u.logf("start-post operation timed out. Stopping.")
		u.enterStop(ResultTimeout)
	case subReload:
		u.logf("Reload operation timed out. Killing reload process.")
		if u.control != nil {
			u.control.signal(syscall.SIGKILL)
			u.control = nil
		}
		u.reloaded(ResultTimeout)
	case subStop:
		u.logf("Stopping timed out. Terminating.")
		u.enterSignal(subStopSigterm, ResultTimeout)
	case subStopSigterm:
		if spec.SendSIGKILL {
			u.logf("State 'stop-sigterm' timed out. Killing.")
			u.enterSignal(subStopSigkill, ResultTimeout)
		} else {
			u.logf("State 'stop-sigterm' timed out. Skipping SIGKILL.")
			u.enterStopPost(ResultTimeout)
		}
	case subStopSigkill:
		u.logf("Processes still around after SIGKILL. Ignoring.")
		u.enterStopPost(ResultTimeout)
	case subStopPost:
		u.logf("State 'stop-post' timed out. Terminating.")
		u.enterSignal(subFinalSigterm, ResultTimeout)
	case subFinalSigterm:
		if spec.SendSIGKILL {
			u.logf("State 'final-sigterm' timed out. Killing.")
			u.enterSignal(subFinalSigkill, ResultTimeout)
		} else {
			u.enterDead(ResultTimeout)
		}
	case subFinalSigkill:
		u.logf("Processes still around after final SIGKILL. Entering failed mode.")
		u.enterDead(ResultTimeout)
	case subAutoRestart:
		u.logf("Scheduled restart job.")
		u.beginStart()
	}
}

// onNotify acts on a message from the unit's notification socket, once
// what the unit wrote before is stored.
func (u *unit) onNotify(msg notifyMsg) {
	spec := u.spec()
	if spec == nil {
		return
	}
	if u.out != nil {
		u.out.flush(u.quit)
	}
	if _, ok := msg.fields["BARRIER"]; ok && len(msg.fields) == 1 {
		return // a barrier's descriptor is closed already: that is all it asks
	}
	allowed := false
	switch spec.NotifyAccess {
	case NotifyMain:
		allowed = u.main != nil && msg.pid == u.main.pid
	case NotifyExec:
		allowed = (u.main != nil && msg.pid == u.main.pid) || (u.control != nil && msg.pid == u.control.pid)
	case NotifyAll:
		allowed = u.cg != nil && u.cg.contains(msg.pid)
	}
	if !allowed {
		u.logf("Got notification message from PID %d, but reception is not permitted for it (NotifyAccess=%s).", msg.pid, spec.NotifyAccess)
		return
	}
	if v, ok := msg.fields["MAINPID"]; ok {
		switch u.sub {
		case subStart, subStartPost, subRunning, subReload:
			pid, err := strconv.Atoi(v)
			switch {
			case err != nil || pid <= 0:
				u.logf("Failed to parse MAINPID=%s field in notification message, ignoring.", v)
			case u.main != nil && u.main.pid == pid:
			case !u.cg.contains(pid):
				u.logf("New main PID %d does not belong to service, refusing.", pid)
			default:
				u.setMain(pid)
				u.logf("New main PID %d.", pid)
			}
		}
	}
	if v, ok := msg.fields["STATUS"]; ok {
		u.status = v
		u.publish()
	}
	if msg.fields["STOPPING"] == "1" && u.sub == subRunning {
		// The service stops by itself: wait for it, as after a
		// KillSignal= but sending none.
		u.setSub(subStopSigterm)
		u.arm(spec.TimeoutStop)
		u.startPoll(20 * time.Millisecond)
	}
	if msg.fields["RELOADING"] == "1" && u.sub == subRunning {
		u.setSub(subReload)
		u.arm(spec.TimeoutStart)
	}
	if msg.fields["READY"] == "1" {
		switch {
		case u.sub == subStart && spec.Type == Notify:
			u.enterStartPost()
		case u.sub == subReload && u.control == nil:
			u.reloaded(ResultSuccess)
		}
	}
}

// arm starts the state's timer; Infinity arms none.
func (u *unit) arm(d time.Duration) {
	u.stopTimer()
	if d == Infinity {
		return
	}
	u.timer = u.m.clock.NewTimer(d)
	u.timerC = u.timer.Chan()
}

func (u *unit) stopTimer() {
	if u.timer != nil {
		u.timer.Stop()
		u.timer, u.timerC = nil, nil
	}
}

func (u *unit) startPoll(every time.Duration) {
	u.stopPoll()
	u.poll = time.NewTicker(every)
	u.pollC = u.poll.C
}

func (u *unit) stopPoll() {
	if u.poll != nil {
		u.poll.Stop()
		u.poll, u.pollC = nil, nil
	}
}

func (u *unit) disarm() {
	u.stopTimer()
	u.stopPoll()
}

// setSub changes the sub-state and publishes it.
func (u *unit) setSub(sub string) {
	if activeState(sub) != activeState(u.sub) || u.since.IsZero() {
		u.since = u.m.clock.Now()
	}
	if sub != subRunning && sub != subStopSigterm && sub != subStart {
		u.stopPoll()
	}
	u.sub = sub
	u.publish()
}

// state is the unit's UnitState as it stands.
func (u *unit) state() service.UnitState {
	st := service.UnitState{
		Name:   u.name,
		Load:   u.def.load,
		Active: activeState(u.sub),
		Sub:    u.sub,
		Since:  u.since,
		Result: string(u.result),
		Status: u.status,
	}
	if u.result == "" {
		st.Result = string(ResultSuccess)
	}
	if s := u.def.spec; s != nil {
		st.Description = s.Description
		st.Hash = s.Hash
	}
	if u.main != nil {
		st.MainPID = u.main.pid
	}
	st.ExitCode, st.ExitStatus = u.mainExit.Code, u.mainExit.Status
	if u.cg != nil && st.Active != service.Inactive {
		st.Cgroup = u.cg.path
	}
	return st
}

// publish makes the unit's state visible, records it for the next
// daemon and tells subscribers, when it changed.
func (u *unit) publish() {
	st := u.state()
	u.mu.Lock()
	changed := st != u.snap
	u.snap = st
	u.mu.Unlock()
	if !changed {
		return
	}
	u.saveRecord()
	u.m.broadcast(st)
	if st.Active == service.Inactive || st.Active == service.Failed {
		go u.m.propagate(st)
	}
}

// loadedSpec is the spec of the file loaded last, nil if it makes no
// service; safe from any goroutine.
func (u *unit) loadedSpec() *Spec {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.loaded.spec
}

// snapshot is the state last published.
func (u *unit) unitName() string { return u.name }

func (u *unit) snapshot() service.UnitState {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.snap
}

// detach lets go of the unit when the manager closes: its processes run
// on, its record stays for the next daemon, its FIFOs and socket stay
// in place.
func (u *unit) detach() {
	u.saveRecord()
	u.disarm()
	for _, p := range []*process{u.main, u.control} {
		if p != nil {
			p.close()
		}
	}
	if u.notify != nil {
		u.notify.close()
	}
	if u.out != nil {
		u.out.close()
	}
	u.resolve(&u.startWaiters, errDetached)
	u.resolve(&u.stopWaiters, errDetached)
	u.resolve(&u.reloadWaiters, errDetached)
}
