package builtin

import (
	"fmt"
	"strings"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"atoll.dev/atoll/internal/calendar"
)

// TimerSpec is a timer unit as the builtin manager runs it: the settings
// of its [Unit], [Timer] and [Install] sections (systemd.timer(5)), with
// systemd's defaults filled in.
type TimerSpec struct {
	// Name is the timer's name, backup.timer.
	Name        string
	Description string
	// Conditions and Asserts are checked when the timer starts.
	Conditions, Asserts []Condition

	// Values are when the timer elapses, in the order given.
	Values []TimerValue
	// Unit is the service started when the timer elapses: Unit=, by
	// default the timer's name with .service.
	Unit string
	// Persistent keeps the time of the last trigger on disk, so that a
	// start after a calendar time was missed (the manager or the machine
	// was down, or the timer stopped) triggers at once.
	Persistent bool
	// Accuracy is AccuracySec=: the timer elapses at a time within this
	// span after its due time, the same time for every timer of the
	// machine where the spans allow, so that wakeups coalesce.
	Accuracy time.Duration
	// RandomizedDelay is RandomizedDelaySec=: a random delay below it is
	// added to each elapse.
	RandomizedDelay time.Duration
	// RemainAfterElapse keeps a timer that will not elapse again active
	// (SubState elapsed) rather than inactive.
	RemainAfterElapse bool

	WantedBy, RequiredBy, Alias, Also []string

	// Hash identifies the options the spec was read from.
	Hash string
}

// TimerBase is what a timer value counts from: the [Timer] setting that
// gave it.
type TimerBase string

// Timer bases.
const (
	// OnActive counts from the timer's activation.
	OnActive TimerBase = "OnActiveSec"
	// OnBoot counts from the machine's boot.
	OnBoot TimerBase = "OnBootSec"
	// OnStartup counts from the manager's start.
	OnStartup TimerBase = "OnStartupSec"
	// OnUnitActive counts from the last activation of the timer's unit.
	OnUnitActive TimerBase = "OnUnitActiveSec"
	// OnUnitInactive counts from the last deactivation of the timer's
	// unit.
	OnUnitInactive TimerBase = "OnUnitInactiveSec"
	// OnCalendar elapses at the times of a calendar event.
	OnCalendar TimerBase = "OnCalendar"
)

// TimerValue is one OnActiveSec=, OnBootSec=, OnStartupSec=,
// OnUnitActiveSec=, OnUnitInactiveSec= or OnCalendar= setting.
type TimerValue struct {
	Base TimerBase
	// Offset is the span after the base, for all but OnCalendar.
	Offset time.Duration
	// Calendar is OnCalendar='s event.
	Calendar *calendar.Spec
}

// String is the value as a unit file writes it.
func (v TimerValue) String() string {
	if v.Base == OnCalendar {
		return string(v.Base) + "=" + v.Calendar.String()
	}
	return fmt.Sprintf("%s=%s", v.Base, v.Offset)
}

// isTimer reports whether name is a timer unit's.
func isTimer(name string) bool { return strings.HasSuffix(name, ".timer") }

// ParseTimerSpec is Defaults{}.ParseTimerSpec.
func ParseTimerSpec(name string, opts []*sdunit.UnitOption) (*TimerSpec, []string, error) {
	return Defaults{}.ParseTimerSpec(name, opts)
}

// ParseTimerSpec reads a timer unit's options into a TimerSpec, as
// ParseSpec reads a service's: what systemd would ignore comes back as
// warnings, what would make it refuse the unit is an error wrapping
// ErrBadSetting. An empty assignment to any of the On...= settings
// resets the list of values, as in systemd. WakeSystem= is accepted
// with a warning: the builtin manager does not wake a suspended
// machine.
func (d Defaults) ParseTimerSpec(name string, opts []*sdunit.UnitOption) (*TimerSpec, []string, error) {
	ts := &TimerSpec{Name: name, Accuracy: time.Minute, RemainAfterElapse: true}
	// [Unit] and [Install] read as a service's do.
	common := &specParser{spec: &Spec{Name: name}}
	var warnings []string
	warnf := func(o *sdunit.UnitOption, format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf("[%s] %s=%s: ", o.Section, o.Name, o.Value)+fmt.Sprintf(format, args...))
	}
	for _, o := range opts {
		if o.Section != "Timer" {
			if o.Section == "Service" {
				warnf(o, "a [Service] section in a timer, ignoring")
				continue
			}
			common.option(o)
			continue
		}
		v := strings.TrimSpace(o.Value)
		span := func(dst *time.Duration) {
			span, err := ParseTimespan(v, time.Second)
			if err != nil {
				warnf(o, "%v, ignoring", err)
				return
			}
			*dst = span
		}
		switch base := TimerBase(o.Name); base {
		case OnActive, OnBoot, OnStartup, OnUnitActive, OnUnitInactive, OnCalendar:
			if v == "" {
				ts.Values = nil
				continue
			}
			value := TimerValue{Base: base}
			if base == OnCalendar {
				spec, err := calendar.Parse(v)
				if err != nil {
					warnf(o, "%v, ignoring", err)
					continue
				}
				value.Calendar = spec
			} else {
				offset, err := ParseTimespan(v, time.Second)
				if err != nil || offset == Infinity {
					warnf(o, "not a time span, ignoring")
					continue
				}
				value.Offset = offset
			}
			ts.Values = append(ts.Values, value)
		case "Persistent":
			b, err := parseBool(v)
			if err != nil {
				warnf(o, "%v, ignoring", err)
				continue
			}
			ts.Persistent = b
		case "RemainAfterElapse":
			b, err := parseBool(v)
			if err != nil {
				warnf(o, "%v, ignoring", err)
				continue
			}
			ts.RemainAfterElapse = b
		case "AccuracySec":
			span(&ts.Accuracy)
			if ts.Accuracy <= 0 {
				ts.Accuracy = time.Microsecond // systemd's floor
			}
		case "RandomizedDelaySec":
			span(&ts.RandomizedDelay)
		case "Unit":
			if err := checkName(v); err != nil {
				common.fail(fmt.Errorf("setting Unit=: %w", err))
				continue
			}
			ts.Unit = v
		case "WakeSystem":
			warnf(o, "the builtin manager does not wake the machine, ignoring")
		default:
			warnf(o, "not supported by the builtin manager, ignoring")
		}
	}
	warnings = append(common.warnings, warnings...)
	s := common.spec
	ts.Description, ts.Conditions, ts.Asserts = s.Description, s.Conditions, s.Asserts
	ts.WantedBy, ts.RequiredBy, ts.Alias, ts.Also = s.WantedBy, s.RequiredBy, s.Alias, s.Also
	if ts.Unit == "" {
		ts.Unit = strings.TrimSuffix(name, ".timer") + ".service"
	}
	bad := func(err error) (*TimerSpec, []string, error) {
		return nil, warnings, fmt.Errorf("%s: %w: %w", name, ErrBadSetting, err)
	}
	switch {
	case common.err != nil:
		return bad(common.err)
	case len(ts.Values) == 0:
		return bad(fmt.Errorf("timer has no OnActiveSec=, OnBootSec=, OnStartupSec=, OnUnitActiveSec=, OnUnitInactiveSec= or OnCalendar="))
	case isTimer(ts.Unit):
		return bad(fmt.Errorf("unit %s: a timer cannot trigger a timer", ts.Unit))
	case !strings.HasSuffix(ts.Unit, ".service"):
		return bad(fmt.Errorf("unit %s: the builtin manager triggers services only", ts.Unit))
	case isTemplate(ts.Unit):
		return bad(fmt.Errorf("unit %s: a template cannot be started", ts.Unit))
	}
	ts.Hash = hashOptions(opts)
	return ts, warnings, nil
}
