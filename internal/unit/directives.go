package unit

import (
	"fmt"
	"strings"
)

// The tables below say which directives systemd reads in which section. They
// follow systemd's src/core/load-fragment-gperf.gperf.in (as of systemd 258,
// including the EXEC_CONTEXT, KILL_CONTEXT and CGROUP_CONTEXT macros that
// systemd.exec(5), systemd.kill(5) and systemd.resource-control(5) document)
// and src/shared/install.c for [Install]. testdata/systemd-252-items.txt,
// the output of systemd 252's --dump-configuration-items, checks that no
// directive an older systemd knows is missing. They are built once and only
// read afterwards.

// execDirectives are systemd.exec(5): shared by [Service], [Socket], [Mount]
// and [Swap].
var execDirectives = words(`
	WorkingDirectory RootDirectory RootImage RootImageOptions RootImagePolicy
	RootHash RootHashSignature RootVerity RootEphemeral ExtensionDirectories
	ExtensionImages ExtensionImagePolicy MountImages MountImagePolicy
	User Group SupplementaryGroups SetLoginEnvironment Nice OOMScoreAdjust
	CoredumpFilter IOSchedulingClass IOSchedulingPriority CPUSchedulingPolicy
	CPUSchedulingPriority CPUSchedulingResetOnFork CPUAffinity NUMAPolicy
	NUMAMask UMask Environment EnvironmentFile PassEnvironment
	UnsetEnvironment DynamicUser RemoveIPC StandardInput StandardOutput
	StandardError StandardInputText StandardInputData TTYPath TTYReset
	TTYVHangup TTYVTDisallocate TTYRows TTYColumns SyslogIdentifier
	SyslogFacility SyslogLevel SyslogLevelPrefix LogLevelMax
	LogRateLimitIntervalSec LogRateLimitBurst LogExtraFields
	LogFilterPatterns SecureBits CapabilityBoundingSet AmbientCapabilities
	TimerSlackNSec NoNewPrivileges KeyringMode ProtectProc ProcSubset
	PrivateBPF BPFDelegateCommands BPFDelegateMaps BPFDelegatePrograms
	BPFDelegateAttachments SystemCallFilter SystemCallArchitectures
	SystemCallErrorNumber SystemCallLog MemoryDenyWriteExecute
	RestrictNamespaces RestrictRealtime RestrictSUIDSGID
	RestrictAddressFamilies LockPersonality DelegateNamespaces
	RestrictFileSystems LandlockConfig
	LimitCPU LimitFSIZE LimitDATA LimitSTACK LimitCORE LimitRSS LimitNOFILE
	LimitAS LimitNPROC LimitMEMLOCK LimitLOCKS LimitSIGPENDING LimitMSGQUEUE
	LimitNICE LimitRTPRIO LimitRTTIME
	ReadWriteDirectories ReadOnlyDirectories InaccessibleDirectories
	ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths
	ExecSearchPath BindPaths BindReadOnlyPaths TemporaryFileSystem PrivateTmp
	PrivateDevices ProtectKernelTunables ProtectKernelModules
	ProtectKernelLogs ProtectClock ProtectControlGroups NetworkNamespacePath
	IPCNamespacePath LogNamespace PrivateNetwork PrivateUsers PrivateMounts
	PrivateIPC PrivatePIDs ProtectSystem ProtectHome MountFlags MountAPIVFS
	BindLogSockets Personality RuntimeDirectoryPreserve RuntimeDirectoryMode
	RuntimeDirectory StateDirectoryMode StateDirectoryAccounting
	StateDirectoryQuota StateDirectory CacheDirectoryMode
	CacheDirectoryAccounting CacheDirectoryQuota CacheDirectory
	LogsDirectoryMode LogsDirectoryAccounting LogsDirectoryQuota
	LogsDirectory ConfigurationDirectoryMode ConfigurationDirectory
	SetCredential SetCredentialEncrypted LoadCredential
	LoadCredentialEncrypted ImportCredential TimeoutCleanSec PAMName
	IgnoreSIGPIPE UtmpIdentifier UtmpMode SELinuxContext AppArmorProfile
	SmackProcessLabel ProtectHostname MemoryKSM
`)

// killDirectives are systemd.kill(5): shared by [Service], [Socket],
// [Mount], [Swap] and [Scope].
var killDirectives = words(`
	SendSIGKILL SendSIGHUP KillMode KillSignal RestartKillSignal
	FinalKillSignal WatchdogSignal
`)

// cgroupDirectives are systemd.resource-control(5): shared by [Service],
// [Socket], [Mount], [Swap], [Slice] and [Scope].
var cgroupDirectives = words(`
	Slice AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes
	StartupAllowedMemoryNodes CPUAccounting CPUWeight StartupCPUWeight
	CPUQuota CPUQuotaPeriodSec MemoryAccounting MemoryMin DefaultMemoryMin
	DefaultMemoryLow DefaultStartupMemoryLow MemoryLow StartupMemoryLow
	MemoryHigh StartupMemoryHigh MemoryMax StartupMemoryMax MemorySwapMax
	StartupMemorySwapMax MemoryZSwapMax StartupMemoryZSwapMax
	MemoryZSwapWriteback DeviceAllow DevicePolicy IOAccounting IOWeight
	StartupIOWeight IODeviceWeight IOReadBandwidthMax IOWriteBandwidthMax
	IOReadIOPSMax IOWriteIOPSMax IODeviceLatencyTargetSec TasksAccounting
	TasksMax Delegate DelegateSubgroup DisableControllers IPAccounting
	IPAddressAllow IPAddressDeny IPIngressFilterPath IPEgressFilterPath
	ManagedOOMSwap ManagedOOMMemoryPressure ManagedOOMMemoryPressureLimit
	ManagedOOMMemoryPressureDurationSec ManagedOOMPreference BPFProgram
	SocketBindAllow SocketBindDeny RestrictNetworkInterfaces
	MemoryPressureThresholdSec MemoryPressureWatch NFTSet CoredumpReceive
`)

// conditions are the checks systemd.unit(5) offers as Condition…= and
// Assert…= in [Unit]; only Firmware has no Assert form.
var conditions = strings.Fields(`
	PathExists PathExistsGlob PathIsDirectory PathIsSymbolicLink
	PathIsMountPoint PathIsReadWrite PathIsEncrypted DirectoryNotEmpty
	FileNotEmpty FileIsExecutable NeedsUpdate FirstBoot Architecture
	Virtualization Host KernelCommandLine KernelVersion Version Credential
	Security Capability ACPower Memory CPUFeature CPUs Environment User Group
	ControlGroupController OSRelease MemoryPressure CPUPressure IOPressure
	KernelModuleLoaded
`)

var unitDirectives = union(words(`
	Description Documentation SourcePath Requires Requisite Wants BindsTo
	BindTo Upholds Conflicts Before After OnSuccess OnFailure
	PropagatesReloadTo PropagateReloadTo ReloadPropagatedFrom
	PropagateReloadFrom PropagatesStopTo StopPropagatedFrom PartOf
	JoinsNamespaceOf RequiresMountsFor WantsMountsFor StopWhenUnneeded
	RefuseManualStart RefuseManualStop AllowIsolate DefaultDependencies
	SurviveFinalKillSignal OnSuccessJobMode OnFailureJobMode OnFailureIsolate
	IgnoreOnIsolate JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction
	JobTimeoutRebootArgument StartLimitIntervalSec StartLimitInterval
	StartLimitBurst StartLimitAction FailureAction SuccessAction
	FailureActionExitStatus SuccessActionExitStatus RebootArgument
	CollectMode ConditionFirmware
`), prefixed("Condition", conditions), prefixed("Assert", conditions))

var installDirectives = words(`Alias WantedBy RequiredBy UpheldBy Also DefaultInstance`)

var serviceDirectives = union(words(`
	PIDFile ExecCondition ExecStartPre ExecStart ExecReload ExecStartPost
	ExecStop ExecStopPost RestartSec RestartSteps RestartMaxDelaySec
	TimeoutSec TimeoutStartSec TimeoutStopSec TimeoutAbortSec
	TimeoutStartFailureMode TimeoutStopFailureMode RuntimeMaxSec
	RuntimeRandomizedExtraSec WatchdogSec StartLimitInterval StartLimitBurst
	StartLimitAction FailureAction RebootArgument Type ExitType Restart
	RestartMode PermissionsStartOnly RootDirectoryStartOnly RemainAfterExit
	GuessMainPID RestartPreventExitStatus RestartForceExitStatus
	SuccessExitStatus NonBlocking BusName FileDescriptorStoreMax
	FileDescriptorStorePreserve NotifyAccess Sockets USBFunctionDescriptors
	USBFunctionStrings OOMPolicy OpenFile ReloadSignal
`), execDirectives, cgroupDirectives, killDirectives)

var socketDirectives = union(words(`
	ListenStream ListenDatagram ListenSequentialPacket ListenFIFO
	ListenNetlink ListenSpecial ListenMessageQueue ListenUSBFunction
	SocketProtocol BindIPv6Only Backlog BindToDevice ExecStartPre
	ExecStartPost ExecStopPre ExecStopPost TimeoutSec SocketUser SocketGroup
	SocketMode DirectoryMode Accept FlushPending Writable MaxConnections
	MaxConnectionsPerSource KeepAlive KeepAliveTimeSec KeepAliveIntervalSec
	KeepAliveProbes DeferAcceptSec NoDelay Priority ReceiveBuffer SendBuffer
	IPTOS IPTTL Mark PipeSize FreeBind Transparent Broadcast PassCredentials
	PassPIDFD PassSecurity PassPacketInfo AcceptFileDescriptors Timestamping
	TCPCongestion ReusePort MessageQueueMaxMessages MessageQueueMessageSize
	RemoveOnStop Symlinks FileDescriptorName Service
	PassFileDescriptorsToExec TriggerLimitIntervalSec TriggerLimitBurst
	PollLimitIntervalSec PollLimitBurst DeferTrigger DeferTriggerMaxSec
	SmackLabel SmackLabelIPIn SmackLabelIPOut SELinuxContextFromNet
`), execDirectives, cgroupDirectives, killDirectives)

var mountDirectives = union(words(`
	What Where Options Type TimeoutSec DirectoryMode SloppyOptions
	LazyUnmount ForceUnmount ReadWriteOnly
`), execDirectives, cgroupDirectives, killDirectives)

var swapDirectives = union(words(`What Priority Options TimeoutSec`),
	execDirectives, cgroupDirectives, killDirectives)

var sectionDirectives = map[string]map[string]bool{
	"Unit":      unitDirectives,
	"Install":   installDirectives,
	"Service":   serviceDirectives,
	"Socket":    socketDirectives,
	"Mount":     mountDirectives,
	"Swap":      swapDirectives,
	"Automount": words(`Where ExtraOptions DirectoryMode TimeoutIdleSec`),
	"Timer": words(`
		OnCalendar OnActiveSec OnBootSec OnStartupSec OnUnitActiveSec
		OnUnitInactiveSec OnClockChange OnTimezoneChange Persistent WakeSystem
		RemainAfterElapse FixedRandomDelay DeferReactivation AccuracySec
		RandomizedDelaySec RandomizedOffsetSec Unit
	`),
	"Path": words(`
		PathExists PathExistsGlob PathChanged PathModified DirectoryNotEmpty
		Unit MakeDirectory DirectoryMode TriggerLimitIntervalSec
		TriggerLimitBurst
	`),
	"Slice": union(words(`ConcurrencySoftMax ConcurrencyHardMax`), cgroupDirectives),
	"Scope": union(words(`RuntimeMaxSec RuntimeRandomizedExtraSec TimeoutStopSec OOMPolicy`),
		cgroupDirectives, killDirectives),
	// systemd accepts these sections in .target and .device units but
	// reads no directive from them.
	"Target": {},
	"Device": {},
}

// obsoleteDirectives are directives systemd once read and now ignores
// (config_parse_warn_compat with DISABLED_LEGACY, or
// config_parse_obsolete_unit_deps), with what to use instead. Old CoreOS
// units use several of them: a unit that sets MemoryLimit= runs without a
// memory limit on systemd 258 and later, which is worth a warning.
var obsoleteDirectives = map[string]string{
	"Capabilities":          "systemd ignores it; use AmbientCapabilities= and CapabilityBoundingSet=",
	"CPUShares":             "systemd 258 and later ignore it (cgroup v1); use CPUWeight=",
	"StartupCPUShares":      "systemd 258 and later ignore it (cgroup v1); use StartupCPUWeight=",
	"MemoryLimit":           "systemd 258 and later ignore it (cgroup v1); use MemoryMax=",
	"BlockIOAccounting":     "systemd 258 and later ignore it (cgroup v1); use IOAccounting=",
	"BlockIOWeight":         "systemd 258 and later ignore it (cgroup v1); use IOWeight=",
	"StartupBlockIOWeight":  "systemd 258 and later ignore it (cgroup v1); use StartupIOWeight=",
	"BlockIODeviceWeight":   "systemd 258 and later ignore it (cgroup v1); use IODeviceWeight=",
	"BlockIOReadBandwidth":  "systemd 258 and later ignore it (cgroup v1); use IOReadBandwidthMax=",
	"BlockIOWriteBandwidth": "systemd 258 and later ignore it (cgroup v1); use IOWriteBandwidthMax=",
	"NetClass":              "systemd ignores it; use a BPF program (IPIngressFilterPath=) or nftables",
	"IgnoreOnSnapshot":      "systemd ignores it: snapshot units no longer exist",
	"SysVStartPriority":     "systemd ignores it; order units with Before= and After=",
	"BusPolicy":             "systemd ignores it: it was for kdbus, which never shipped",
	"RequiresOverridable":   "systemd reads it as Requires=; write Requires=",
	"RequisiteOverridable":  "systemd reads it as Requisite=; write Requisite=",
}

// obsoleteIn says in which sections each obsolete directive was valid, so
// that, say, MemoryLimit= in [Unit] is reported as unknown, not obsolete.
func obsoleteIn(section, directive string) bool {
	if _, ok := obsoleteDirectives[directive]; !ok {
		return false
	}
	switch directive {
	case "Capabilities":
		return section == "Service" || section == "Socket" || section == "Mount" || section == "Swap"
	case "IgnoreOnSnapshot", "RequiresOverridable", "RequisiteOverridable":
		return section == "Unit"
	case "SysVStartPriority", "BusPolicy":
		return section == "Service"
	default: // the cgroup directives
		return section == "Service" || section == "Socket" || section == "Mount" ||
			section == "Swap" || section == "Slice" || section == "Scope"
	}
}

// typeSections lists the sections systemd reads for each unit type (the
// .sections string of each unit vtable in src/core/*.c).
var typeSections = map[string][]string{
	"service":   {"Unit", "Service", "Install"},
	"socket":    {"Unit", "Socket", "Install"},
	"device":    {"Unit", "Device", "Install"},
	"mount":     {"Unit", "Mount", "Install"},
	"automount": {"Unit", "Automount", "Install"},
	"swap":      {"Unit", "Swap", "Install"},
	"target":    {"Unit", "Target", "Install"},
	"path":      {"Unit", "Path", "Install"},
	"timer":     {"Unit", "Timer", "Install"},
	"slice":     {"Unit", "Slice", "Install"},
	"scope":     {"Unit", "Scope", "Install"},
}

// dependencyDirectives ignore an empty assignment instead of resetting
// their list: systemd.unit(5) says dependencies cannot be reset, and
// config_parse_unit_deps and config_parse_unit_mounts_for add nothing for
// an empty value.
var dependencyDirectives = words(`
	Requires Requisite Wants BindsTo BindTo Upholds Conflicts Before After
	OnSuccess OnFailure PropagatesReloadTo PropagateReloadTo
	ReloadPropagatedFrom PropagateReloadFrom PropagatesStopTo
	StopPropagatedFrom PartOf JoinsNamespaceOf RequiresOverridable
	RequisiteOverridable RequiresMountsFor WantsMountsFor
`)

// sectionWarning says why systemd would ignore a section in a unit of
// unitType ("" when the type is not known), or "" when it reads it.
// Sections starting with "X-" are the user's and never warned about.
func sectionWarning(unitType, section string) string {
	if strings.HasPrefix(section, "X-") {
		return ""
	}
	if _, known := sectionDirectives[section]; !known {
		return fmt.Sprintf("unknown section [%s]: systemd ignores it and its directives", section)
	}
	sections, ok := typeSections[unitType]
	if !ok {
		return ""
	}
	for _, s := range sections {
		if s == section {
			return ""
		}
	}
	return fmt.Sprintf("section [%s] does not belong in a .%s unit: systemd ignores it and its directives", section, unitType)
}

// directiveWarning says why systemd would ignore directive in a section it
// reads, or "" when it reads the directive.
func directiveWarning(section, directive string) string {
	if sectionDirectives[section][directive] {
		return ""
	}
	if obsoleteIn(section, directive) {
		return fmt.Sprintf("obsolete directive %s= in [%s]: %s", directive, section, obsoleteDirectives[directive])
	}
	return fmt.Sprintf("unknown directive %s= in [%s]", directive, section)
}

func words(list string) map[string]bool {
	set := make(map[string]bool)
	for _, w := range strings.Fields(list) {
		set[w] = true
	}
	return set
}

func prefixed(prefix string, list []string) map[string]bool {
	set := make(map[string]bool, len(list))
	for _, w := range list {
		set[prefix+w] = true
	}
	return set
}

func union(sets ...map[string]bool) map[string]bool {
	all := make(map[string]bool)
	for _, set := range sets {
		for w := range set {
			all[w] = true
		}
	}
	return all
}
