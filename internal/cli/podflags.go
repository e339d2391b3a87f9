package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	atollrt "atoll.dev/atoll/internal/runtime"
	"atoll.dev/atoll/internal/runtime/pod"
)

// appFlags are rkt's per-app flags. Given before the first image they are
// the defaults of every app; after an image, they are that app's.
type appFlags struct {
	name, exec, user, group, workDir string
	env, envFiles                    []string
	inheritEnv                       bool
	capsRetain, capsRemove           []string
	seccomp                          string
	readOnlyRootfs                   bool
	mounts                           []string
	memory, cpu                      string
	pidsLimit                        int64
	stdin, stdout, stderr            string
}

func (a *appFlags) bind(fs *pflag.FlagSet, withName bool) {
	if withName {
		fs.StringVar(&a.name, "name", a.name, "the app's name (default: from the image name)")
	}
	fs.StringVar(&a.exec, "exec", a.exec, "run this program instead of the image's entrypoint")
	fs.StringVar(&a.user, "user", a.user, "user to run as (name or UID, from the image's /etc/passwd)")
	fs.StringVar(&a.group, "group", a.group, "group to run as (name or GID)")
	fs.StringVar(&a.workDir, "working-dir", a.workDir, "working directory of the app")
	fs.StringArrayVar(&a.env, "set-env", a.env, "set an environment variable, KEY=VALUE (repeatable)")
	fs.StringArrayVar(&a.envFiles, "set-env-file", a.envFiles, "read KEY=VALUE lines from a file (repeatable)")
	fs.BoolVar(&a.inheritEnv, "inherit-env", a.inheritEnv, "pass this process's environment to the app")
	fs.StringSliceVar(&a.capsRetain, "caps-retain", a.capsRetain, "capabilities the app keeps, replacing the default 14")
	fs.StringSliceVar(&a.capsRemove, "caps-remove", a.capsRemove, "capabilities to remove from the default 14")
	fs.StringVar(&a.seccomp, "seccomp", a.seccomp, "seccomp filter, rkt's syntax: mode=retain|remove[,errno=E],SYSCALL|@GROUP,...")
	fs.BoolVar(&a.readOnlyRootfs, "readonly-rootfs", a.readOnlyRootfs, "mount the app's root file system read-only")
	fs.StringArrayVar(&a.mounts, "mount", a.mounts, "place a volume: volume=NAME,target=PATH (repeatable)")
	fs.StringVar(&a.memory, "memory", a.memory, "memory limit, such as 128M or 1Gi")
	fs.StringVar(&a.cpu, "cpu", a.cpu, "CPU limit, such as 500m or 2")
	fs.Int64Var(&a.pidsLimit, "pids-limit", a.pidsLimit, "limit on the number of processes")
	fs.StringVar(&a.stdin, "stdin", a.stdin, "null or stream (default null; stream with --interactive)")
	fs.StringVar(&a.stdout, "stdout", a.stdout, "stream (to this process and the log), log (log only) or null")
	fs.StringVar(&a.stderr, "stderr", a.stderr, "stream, log or null")
}

func (a appFlags) clone() appFlags {
	c := a
	c.env = append([]string(nil), a.env...)
	c.envFiles = append([]string(nil), a.envFiles...)
	c.capsRetain = append([]string(nil), a.capsRetain...)
	c.capsRemove = append([]string(nil), a.capsRemove...)
	c.mounts = append([]string(nil), a.mounts...)
	return c
}

func (a appFlags) options(image string, args []string, argsSet bool) (atollrt.AppOptions, error) {
	o := atollrt.AppOptions{
		Image: image, Name: a.name, Exec: a.exec, Args: args, ArgsSet: argsSet,
		User: a.user, Group: a.group, WorkingDir: a.workDir,
		Env: a.env, EnvFiles: a.envFiles, InheritEnv: a.inheritEnv,
		CapsRetain: a.capsRetain, CapsRemove: a.capsRemove, Seccomp: a.seccomp,
		ReadOnlyRootfs: a.readOnlyRootfs, Memory: a.memory, CPU: a.cpu, PidsLimit: a.pidsLimit,
		Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr,
	}
	for _, m := range a.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, mt)
	}
	return o, nil
}

// podFlags are the flags of `pod run` and `pod prepare` that concern the
// whole pod.
type podFlags struct {
	name, hostname, uuidFileSave, signature string
	volumes, ports, dns                     []string
	nets, insecure                          []string
	interactive                             bool
	defaults                                appFlags
}

func (p *podFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&p.name, "name", "", "a name for the pod (before the first image; after an image, the app's name)")
	fs.StringVar(&p.hostname, "hostname", "", "the pod's hostname (default atoll-UUID)")
	fs.StringVar(&p.uuidFileSave, "uuid-file-save", "", "write the pod's UUID to this file")
	fs.StringVar(&p.signature, "signature", "", "detached signature of the first image, when it is imported or fetched here")
	fs.StringArrayVar(&p.volumes, "volume", nil, "NAME,kind=host,source=PATH[,readOnly=true] or NAME,kind=empty[,mode=0755,uid=N,gid=N] (repeatable)")
	fs.StringArrayVar(&p.ports, "port", nil, "publish a pod port: CONTAINERPORT[/udp]:[HOSTIP:]HOSTPORT, or docker2aci's name 80-tcp for the port (repeatable)")
	fs.StringArrayVar(&p.dns, "dns", nil, "nameserver for the pod, or host, or none (repeatable)")
	fs.StringSliceVar(&p.nets, "net", nil, "host, none, or networks: default and names in /etc/atoll/net.d (default \"default\")")
	fs.StringSliceVar(&p.insecure, "insecure-options", nil, "turn protections off: image, capabilities, paths, seccomp, all-run, all")
	fs.BoolVar(&p.interactive, "interactive", false, "give the app this terminal (or this standard input)")
	p.defaults.bind(fs, false)
}

// parsePodArgs reads rkt's command line: [POD FLAGS] IMAGE [APP FLAGS]
// [[--] ARGS] [--- IMAGE [APP FLAGS] [[--] ARGS]]...
func parsePodArgs(fs *pflag.FlagSet, pf *podFlags, args []string) (atollrt.PodOptions, error) {
	var o atollrt.PodOptions
	fs.SetInterspersed(false)
	if err := fs.Parse(args); err != nil {
		return o, usageError{err}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return o, usagef("an image is needed")
	}
	for len(rest) > 0 {
		seg := rest
		rest = nil
		for i, a := range seg {
			if a == "---" {
				seg, rest = seg[:i], seg[i+1:]
				if len(rest) == 0 {
					return o, usagef("--- must be followed by an image")
				}
				break
			}
		}
		image := seg[0]
		if strings.HasPrefix(image, "-") {
			return o, usagef("want an image, got %q", image)
		}
		af := pf.defaults.clone()
		afs := pflag.NewFlagSet(image, pflag.ContinueOnError)
		afs.SetInterspersed(false)
		af.bind(afs, true)
		if err := afs.Parse(seg[1:]); err != nil {
			return o, usagef("app %s: %v", image, err)
		}
		appArgs := afs.Args()
		argsSet := len(appArgs) > 0 || afs.ArgsLenAtDash() >= 0
		ao, err := af.options(image, appArgs, argsSet)
		if err != nil {
			return o, usageError{err}
		}
		o.Apps = append(o.Apps, ao)
	}
	o.Name, o.Hostname, o.Signature = pf.name, pf.hostname, pf.signature
	o.Net, o.Ports, o.DNS, o.Interactive = pf.nets, pf.ports, pf.dns, pf.interactive
	for _, v := range pf.volumes {
		vol, err := parseVolume(v)
		if err != nil {
			return o, usageError{err}
		}
		o.Volumes = append(o.Volumes, vol)
	}
	ins, err := parseInsecure(pf.insecure)
	if err != nil {
		return o, usageError{err}
	}
	o.Insecure = ins
	return o, nil
}

// parseInsecure reads --insecure-options.
func parseInsecure(opts []string) (pod.Insecure, error) {
	var in pod.Insecure
	for _, o := range opts {
		switch strings.TrimSpace(o) {
		case "none", "":
		case "image":
			in.Image = true
		case "capabilities":
			in.Capabilities = true
		case "paths":
			in.Paths = true
		case "seccomp":
			in.Seccomp = true
		case "all-run":
			in.Capabilities, in.Paths, in.Seccomp = true, true, true
		case "all":
			in = pod.Insecure{Image: true, Capabilities: true, Paths: true, Seccomp: true}
		default:
			return in, fmt.Errorf("--insecure-options=%s: want none, image, capabilities, paths, seccomp, all-run or all", o)
		}
	}
	return in, nil
}

// parseVolume reads --volume NAME,kind=host,source=PATH,readOnly=BOOL or
// NAME,kind=empty,mode=0755,uid=N,gid=N.
func parseVolume(s string) (pod.Volume, error) {
	parts := strings.Split(s, ",")
	v := pod.Volume{Name: parts[0]}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return v, fmt.Errorf("--volume %s: %q: want key=value", s, p)
		}
		var err error
		switch k {
		case "kind":
			v.Kind = val
		case "source":
			v.Source = val
		case "readOnly":
			v.ReadOnly, err = strconv.ParseBool(val)
		case "mode":
			v.Mode = val
		case "uid":
			v.UID, err = strconv.Atoi(val)
		case "gid":
			v.GID, err = strconv.Atoi(val)
		case "recursive":
			_, err = strconv.ParseBool(val) // binds are always recursive
		default:
			return v, fmt.Errorf("--volume %s: unknown key %q (want kind, source, readOnly, mode, uid, gid)", s, k)
		}
		if err != nil {
			return v, fmt.Errorf("--volume %s: %s=%s: %w", s, k, val, err)
		}
	}
	if v.Kind == "" {
		return v, fmt.Errorf("--volume %s: kind= is needed (host or empty)", s)
	}
	return v, nil
}

// parseMount reads --mount volume=NAME,target=PATH.
func parseMount(s string) (pod.Mount, error) {
	var m pod.Mount
	for _, p := range strings.Split(s, ",") {
		k, val, _ := strings.Cut(p, "=")
		switch k {
		case "volume":
			m.Volume = val
		case "target":
			m.Target = val
		default:
			return m, fmt.Errorf("--mount %s: unknown key %q (want volume and target)", s, k)
		}
	}
	if m.Volume == "" || m.Target == "" {
		return m, fmt.Errorf("--mount %s: want volume=NAME,target=PATH", s)
	}
	return m, nil
}
