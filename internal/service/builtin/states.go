package builtin

import "atoll.dev/atoll/internal/service"

// A service's sub-states, systemd's (src/core/service.c), and the active
// state each one reads as.
const (
	subDead         = "dead"
	subStartPre     = "start-pre"
	subStart        = "start"
	subStartPost    = "start-post"
	subRunning      = "running"
	subExited       = "exited"
	subReload       = "reload"
	subStop         = "stop"
	subStopSigterm  = "stop-sigterm"
	subStopSigkill  = "stop-sigkill"
	subStopPost     = "stop-post"
	subFinalSigterm = "final-sigterm"
	subFinalSigkill = "final-sigkill"
	subFailed       = "failed"
	subAutoRestart  = "auto-restart"
)

var activeStates = map[string]service.ActiveState{
	subDead:         service.Inactive,
	subStartPre:     service.Activating,
	subStart:        service.Activating,
	subStartPost:    service.Activating,
	subRunning:      service.Active,
	subExited:       service.Active,
	subReload:       service.Reloading,
	subStop:         service.Deactivating,
	subStopSigterm:  service.Deactivating,
	subStopSigkill:  service.Deactivating,
	subStopPost:     service.Deactivating,
	subFinalSigterm: service.Deactivating,
	subFinalSigkill: service.Deactivating,
	subFailed:       service.Failed,
	subAutoRestart:  service.Activating,
}

func activeState(sub string) service.ActiveState {
	if a, ok := activeStates[sub]; ok {
		return a
	}
	return service.Inactive
}
