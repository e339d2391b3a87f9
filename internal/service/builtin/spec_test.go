package builtin

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"
	"github.com/google/go-cmp/cmp"
)

func parseSpecText(t *testing.T, name, text string) (*Spec, []string, error) {
	t.Helper()
	opts, err := sdunit.DeserializeOptions(strings.NewReader(text))
	if err != nil {
		t.Fatalf("deserialize %s: %v", name, err)
	}
	return ParseSpec(name, opts)
}

func TestParseSpecDefaults(t *testing.T) {
	s, warnings, err := parseSpecText(t, "web.service", "[Service]\nExecStart=/bin/sleep 10\n")
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ParseSpec: %v, warnings %q", err, warnings)
	}
	want := &Spec{
		Name:               "web.service",
		StartLimitInterval: 10 * time.Second,
		StartLimitBurst:    5,
		Type:               Simple,
		GuessMainPID:       true,
		NotifyAccess:       NotifyNone,
		ExecStart:          []Command{{Path: "/bin/sleep", Argv: []string{"/bin/sleep", "10"}}},
		Restart:            RestartNo,
		RestartDelay:       100 * time.Millisecond,
		TimeoutStart:       90 * time.Second,
		TimeoutStop:        90 * time.Second,
		KillMode:           KillControlGroup,
		KillSignal:         syscall.SIGTERM,
		SendSIGKILL:        true,
		Hash:               s.Hash,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("ParseSpec (-want +got):\n%s", diff)
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(*Spec) string
	}{
		{"oneshot when no ExecStart and no Type", "[Service]\nRemainAfterExit=yes\nExecStop=/bin/true\n", func(s *Spec) string {
			if s.Type != Oneshot || s.TimeoutStart != Infinity {
				return "want Type=oneshot without a start timeout"
			}
			return ""
		}},
		{"oneshot with several ExecStart", "[Service]\nType=oneshot\nExecStart=/bin/true\nExecStart=/bin/echo x ; /bin/echo y\n", func(s *Spec) string {
			if len(s.ExecStart) != 3 {
				return "want 3 commands"
			}
			return ""
		}},
		{"empty assignment resets a list", "[Service]\nExecStartPre=/bin/a\nExecStartPre=\nExecStartPre=/bin/b\nExecStart=/bin/true\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n", func(s *Spec) string {
			if len(s.ExecStartPre) != 1 || s.ExecStartPre[0].Path != "/bin/b" || len(s.Environment) != 1 || s.Environment[0] != "B=2" {
				return "want only the assignments after the empty ones"
			}
			return ""
		}},
		{"notify defaults NotifyAccess=main", "[Service]\nType=notify\nExecStart=/bin/true\n", func(s *Spec) string {
			if s.NotifyAccess != NotifyMain {
				return "want NotifyAccess=main"
			}
			return ""
		}},
		{"timeouts", "[Service]\nExecStart=/bin/true\nTimeoutSec=5\nTimeoutStopSec=0\nRestartSec=1min 30s\n", func(s *Spec) string {
			if s.TimeoutStart != 5*time.Second || s.TimeoutStop != Infinity || s.RestartDelay != 90*time.Second {
				return "want start 5s, stop infinity, restart 90s"
			}
			return ""
		}},
		{"kill settings", "[Service]\nExecStart=/bin/true\nKillMode=mixed\nKillSignal=SIGINT\nSendSIGKILL=no\n", func(s *Spec) string {
			if s.KillMode != KillMixed || s.KillSignal != syscall.SIGINT || s.SendSIGKILL {
				return "want mixed, SIGINT, no SIGKILL"
			}
			return ""
		}},
		{"kill signal by number and short name", "[Service]\nExecStart=/bin/true\nKillSignal=9\n", func(s *Spec) string {
			if s.KillSignal != syscall.SIGKILL {
				return "want SIGKILL"
			}
			return ""
		}},
		{"exit statuses", "[Service]\nExecStart=/bin/true\nSuccessExitStatus=1 2 SIGKILL\nSuccessExitStatus=75\n", func(s *Spec) string {
			want := ExitStatusSet{Statuses: []int{1, 2, 75}, Signals: []syscall.Signal{syscall.SIGKILL}}
			if !cmp.Equal(s.SuccessExitStatus, want) {
				return "want 1 2 75 SIGKILL"
			}
			return ""
		}},
		{"environment and files", "[Service]\nExecStart=/bin/true\nEnvironment=\"A=a b\" C=1\nEnvironment=C=2\nEnvironmentFile=-/etc/x\nEnvironmentFile=/etc/y\n", func(s *Spec) string {
			if !cmp.Equal(s.Environment, []string{"A=a b", "C=2"}) || !cmp.Equal(s.EnvironmentFiles, []EnvFile{{"/etc/x", true}, {"/etc/y", false}}) {
				return "want A, C=2, two files"
			}
			return ""
		}},
		{"unit section", "[Unit]\nDescription=Web\nRequires=a.service b.service\nAfter=a.service\nStartLimitIntervalSec=1min\nStartLimitBurst=3\nConditionPathExists=|!/x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n", func(s *Spec) string {
			switch {
			case s.Description != "Web", !cmp.Equal(s.Requires, []string{"a.service", "b.service"}), !cmp.Equal(s.After, []string{"a.service"}):
				return "want the description and dependencies"
			case s.StartLimitInterval != time.Minute || s.StartLimitBurst != 3:
				return "want the start limit"
			case !cmp.Equal(s.Conditions, []Condition{{Check: "PathExists", Trigger: true, Negate: true, Value: "/x"}}):
				return "want the condition"
			case !cmp.Equal(s.WantedBy, []string{"multi-user.target"}):
				return "want WantedBy"
			}
			return ""
		}},
		{"working directory", "[Service]\nExecStart=/bin/true\nWorkingDirectory=-/srv\nUser=nobody\nGroup=nogroup\n", func(s *Spec) string {
			if s.WorkingDirectory != "/srv" || !s.WorkingDirectoryOptional || s.User != "nobody" || s.Group != "nogroup" {
				return "want -/srv as nobody:nogroup"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		s, _, err := parseSpecText(t, "x.service", tt.text)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if msg := tt.check(s); msg != "" {
			t.Errorf("%s: %s; got %+v", tt.name, msg, s)
		}
	}
}

func TestParseSpecRefuses(t *testing.T) {
	for _, text := range []string{
		"[Service]\nType=simple\n",
		"[Service]\nType=oneshot\n",
		"[Service]\nExecStop=/bin/true\n",
		"[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n",
		"[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=always\n",
		"[Service]\nExecStart=/bin/echo \"unbalanced\n",
		"[Service]\nExecStart=relative/path\n",
	} {
		_, _, err := parseSpecText(t, "x.service", text)
		if !errors.Is(err, ErrBadSetting) {
			t.Errorf("ParseSpec(%q) = %v, want ErrBadSetting", text, err)
		}
	}
}

func TestParseSpecWarns(t *testing.T) {
	_, warnings, err := parseSpecText(t, "x.service", `[Unit]
Documentation=man:x
Bogus=1
ConditionHost=x
[Service]
ExecStart=/bin/true
MemoryMax=1G
TimeoutStopSec=soon
X-Custom=1
[X-Fleet]
MachineOf=y
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 4 { // Bogus, ConditionHost, MemoryMax, TimeoutStopSec
		t.Errorf("warnings %q, want 4", warnings)
	}
}

func TestDefaultsOverride(t *testing.T) {
	opts, _ := sdunit.DeserializeOptions(strings.NewReader("[Service]\nExecStart=/bin/true\n"))
	s, _, err := Defaults{TimeoutStop: 5 * time.Second, StartLimitBurst: 2}.ParseSpec("x.service", opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.TimeoutStop != 5*time.Second || s.TimeoutStart != 90*time.Second || s.StartLimitBurst != 2 {
		t.Errorf("got stop %v start %v burst %d, want 5s 90s 2", s.TimeoutStop, s.TimeoutStart, s.StartLimitBurst)
	}
}

// TestShouldRestart is systemd.service(5)'s table under Restart=.
func TestShouldRestart(t *testing.T) {
	clean := Exit{Code: Exited, Status: 0}
	unclean := Exit{Code: Exited, Status: 1}
	signal := Exit{Code: Killed, Status: int(syscall.SIGSEGV)}
	causes := []struct {
		name   string
		result Result
		exit   Exit
	}{
		{"clean exit", ResultSuccess, clean},
		{"unclean exit code", ResultExitCode, unclean},
		{"unclean signal", ResultSignal, signal},
		{"timeout", ResultTimeout, Exit{}},
		{"watchdog", ResultWatchdog, Exit{}},
	}
	// want[policy] lists, in the order of causes, whether it restarts.
	want := map[RestartPolicy][5]bool{
		RestartNo:         {false, false, false, false, false},
		RestartAlways:     {true, true, true, true, true},
		RestartOnSuccess:  {true, false, false, false, false},
		RestartOnFailure:  {false, true, true, true, true},
		RestartOnAbnormal: {false, false, true, true, true},
		RestartOnAbort:    {false, false, true, false, false},
		RestartOnWatchdog: {false, false, false, false, true},
	}
	for policy, row := range want {
		s := &Spec{Restart: policy}
		for i, c := range causes {
			if got := s.ShouldRestart(c.result, c.exit); got != row[i] {
				t.Errorf("Restart=%s after %s: restart %v, want %v", policy, c.name, got, row[i])
			}
		}
	}
	s := &Spec{Restart: RestartOnFailure, RestartPreventExitStatus: ExitStatusSet{Statuses: []int{1}}}
	if s.ShouldRestart(ResultExitCode, unclean) {
		t.Error("RestartPreventExitStatus=1: restarted after exit 1")
	}
	s = &Spec{Restart: RestartNo, RestartForceExitStatus: ExitStatusSet{Signals: []syscall.Signal{syscall.SIGSEGV}}}
	if !s.ShouldRestart(ResultSignal, signal) {
		t.Error("RestartForceExitStatus=SIGSEGV: not restarted after SIGSEGV")
	}
}

func TestMainResult(t *testing.T) {
	s := &Spec{Type: Simple, SuccessExitStatus: ExitStatusSet{Statuses: []int{3}, Signals: []syscall.Signal{syscall.SIGUSR1}}}
	tests := []struct {
		exit Exit
		want Result
	}{
		{Exit{Exited, 0}, ResultSuccess},
		{Exit{Exited, 3}, ResultSuccess},
		{Exit{Exited, 4}, ResultExitCode},
		{Exit{Killed, int(syscall.SIGTERM)}, ResultSuccess},
		{Exit{Killed, int(syscall.SIGUSR1)}, ResultSuccess},
		{Exit{Killed, int(syscall.SIGKILL)}, ResultSignal},
		{Exit{Dumped, int(syscall.SIGABRT)}, ResultCoreDump},
		{Exit{}, ResultSuccess},
	}
	for _, tt := range tests {
		if got := s.mainResult(tt.exit); got != tt.want {
			t.Errorf("mainResult(%v) = %s, want %s", tt.exit, got, tt.want)
		}
	}
	oneshot := &Spec{Type: Oneshot}
	if got := oneshot.mainResult(Exit{Killed, int(syscall.SIGTERM)}); got != ResultSignal {
		t.Errorf("oneshot killed by SIGTERM: %s, want signal", got)
	}
}
