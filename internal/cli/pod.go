package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/node"
	atollrt "atoll.dev/atoll/internal/runtime"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/trust"
)

// runtimeFlags locate the runtime's directories, like `atoll node`'s.
type runtimeFlags struct {
	root string
	// stateDir and configDir replace the directories under root; they are
	// hidden, for rkt's --dir and --local-config (see rkt.go).
	stateDir, configDir string
}

func (f *runtimeFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.root, "root", os.Getenv(api.RootEnv),
		"the machine's root: state in ROOT/var/lib/atoll, config in ROOT/etc/atoll (default $ATOLL_ROOT or /)")
	f.bindDirs(cmd.PersistentFlags())
}

// bindDirs adds the hidden directory flags to fs.
func (f *runtimeFlags) bindDirs(fs *pflag.FlagSet) {
	fs.StringVar(&f.stateDir, "state-dir", f.stateDir, "the state directory, holding pods/ and images/ (default ROOT/var/lib/atoll)")
	fs.StringVar(&f.configDir, "config-dir", f.configDir, "the config directory, holding net.d/ and trustedkeys/ (default ROOT/etc/atoll)")
	fs.MarkHidden("state-dir")
	fs.MarkHidden("config-dir")
}

func (f *runtimeFlags) open(g *globals) (*atollrt.Runtime, error) {
	p := node.Paths{Root: f.root, RunDir: g.runDir}
	o := atollrt.Options{StateDir: p.StateDir(), RunDir: p.RunDirPath(), ConfigDir: p.ConfigDir()}
	if f.stateDir != "" {
		o.StateDir = f.stateDir
	}
	if f.configDir != "" {
		o.ConfigDir = f.configDir
	}
	return atollrt.Open(o)
}

func newPodCmd(g *globals) *cobra.Command {
	rf := &runtimeFlags{}
	cmd := &cobra.Command{
		Use:   "pod",
		Short: "Run containers as pods, each its own process (rkt's model)",
		Long: `Pods run with no daemon: "atoll pod run" is the pod's own process, so a
unit's ExecStart=atoll pod run ... is supervised like any service. Apps of
one pod share network, IPC and UTS namespaces; each has its own root.`,
	}
	rf.bind(cmd)
	cmd.AddCommand(
		newPodRunCmd(g, rf, false), newPodRunCmd(g, rf, true), newPodRunPreparedCmd(g, rf),
		newPodListCmd(g, rf), newPodStatusCmd(g, rf), newPodStopCmd(g, rf), newPodRmCmd(g, rf),
		newPodGCCmd(g, rf), newPodEnterCmd(g, rf), newPodLogsCmd(g, rf), newPodCatManifestCmd(g, rf),
		newPodExportCmd(g, rf),
	)
	return cmd
}

func needRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: it creates namespaces, mounts and cgroups", what)
	}
	return nil
}

func newPodRunCmd(g *globals, rf *runtimeFlags, prepareOnly bool) *cobra.Command {
	use, short := "run", "Run a pod: [FLAGS] IMAGE [APP FLAGS] [-- ARGS] [--- IMAGE ...]"
	if prepareOnly {
		use, short = "prepare", "Prepare a pod to run later with run-prepared; prints its UUID"
	}
	cmd := &cobra.Command{
		Use:                use + " [FLAGS] IMAGE [APP FLAGS] [[--] ARGS] [--- IMAGE ...]",
		Short:              short,
		DisableFlagParsing: true,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fs := pflag.NewFlagSet("pod "+use, pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		pf := &podFlags{}
		pf.bind(fs)
		var rm bool
		var stopTimeout time.Duration
		if !prepareOnly {
			fs.BoolVar(&rm, "rm", false, "remove the pod when it exits")
			fs.DurationVar(&stopTimeout, "stop-timeout", atollrt.DefaultStopTimeout, "time apps get between SIGTERM and SIGKILL")
		}
		// Flag parsing is ours here, so the inherited flags are too.
		fs.StringVar(&rf.root, "root", rf.root, "the machine's root")
		fs.StringVar(&g.runDir, "run-dir", g.runDir, "the run directory")
		rf.bindDirs(fs)
		for _, a := range args {
			if a == "-h" || a == "--help" {
				fmt.Fprintf(g.stdout, "Usage: atoll pod %s\n\n%s\n\nFlags (before the first image; app flags also after an image):\n%s", cmd.Use, short, fs.FlagUsages())
				return nil
			}
			if a == "--" || a == "---" {
				break
			}
		}
		opts, err := parsePodArgs(fs, pf, args)
		if err != nil {
			return err
		}
		if err := needRoot("atoll pod " + use); err != nil {
			return err
		}
		rt, err := rf.open(g)
		if err != nil {
			return err
		}
		p, err := rt.Prepare(cmd.Context(), opts)
		if err != nil {
			return podError(err)
		}
		if pf.uuidFileSave != "" {
			if err := os.WriteFile(pf.uuidFileSave, []byte(p.UUID+"\n"), 0o644); err != nil {
				p.Remove()
				return fmt.Errorf("--uuid-file-save: %w", err)
			}
		}
		if prepareOnly {
			if err := p.MarkPrepared(); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, p.UUID)
			return nil
		}
		code, err := rt.Run(cmd.Context(), p, atollrt.RunOptions{Remove: rm, StopTimeout: stopTimeout})
		if err != nil {
			return err
		}
		if code != 0 {
			return exitCode{code}
		}
		return nil
	}
	return cmd
}

// podError adds the command a user needs to the trust store's refusals.
func podError(err error) error {
	var nokey *trust.NoKeyError
	if errors.As(err, &nokey) {
		return fmt.Errorf("%w\n  trust a key with: atoll image trust --prefix PREFIX KEYFILE\n  or skip the check with --insecure-options=image", err)
	}
	return err
}

func newPodRunPreparedCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var rm bool
	var stopTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "run-prepared UUID",
		Short: "Run a pod made by prepare",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot("atoll pod run-prepared"); err != nil {
				return err
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			code, err := rt.RunPrepared(cmd.Context(), args[0], atollrt.RunOptions{Remove: rm, StopTimeout: stopTimeout})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode{code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&rm, "rm", false, "remove the pod when it exits")
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", atollrt.DefaultStopTimeout, "time apps get between SIGTERM and SIGKILL")
	return cmd
}

func newPodListCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pods: UUID, APP, IMAGE, STATE, NETWORKS, CREATED",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(lf.output); err != nil {
				return err
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			pods, err := rt.List()
			if err != nil {
				return err
			}
			if lf.output == "json" {
				out := make([]podJSON, 0, len(pods))
				for _, p := range pods {
					out = append(out, toPodJSON(p))
				}
				return printJSON(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if !lf.noLegend {
				fmt.Fprintln(tw, "UUID\tAPP\tIMAGE\tSTATE\tNETWORKS\tCREATED")
			}
			for _, p := range pods {
				uuid := p.UUID
				if !lf.full {
					uuid = uuid[:8]
				}
				created := p.Created().Local().Format("2006-01-02 15:04:05")
				if !lf.full {
					created = humanAgo(time.Since(p.Created())) + " ago"
				}
				nets := "-"
				if p.Run != nil && len(p.Run.Networks) > 0 {
					var parts []string
					for _, n := range p.Run.Networks {
						parts = append(parts, n.Name+":ip4="+n.IP)
					}
					nets = strings.Join(parts, ",")
				}
				if p.Manifest == nil {
					fmt.Fprintf(tw, "%s\t-\t-\t%s\t%s\t%s\n", uuid, p.State, nets, created)
					continue
				}
				for i, a := range p.Manifest.Apps {
					img := a.Image.Name
					if img == "" || lf.full {
						img = a.Image.ID
						if !lf.full && len(img) > 19 {
							img = img[:19]
						}
					}
					if i == 0 {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", uuid, a.Name, img, p.State, nets, created)
					} else {
						fmt.Fprintf(tw, "\t%s\t%s\t\t\t\n", a.Name, img)
					}
				}
			}
			return tw.Flush()
		},
	}
	lf.bind(cmd, "full UUIDs, image IDs and times")
	return cmd
}

func checkOutput(output string) error {
	if output != "text" && output != "json" {
		return usagef("--output %q: want text or json", output)
	}
	return nil
}

// listFlags are the flags every list verb shares.
type listFlags struct {
	noLegend, full bool
	output         string
}

func (l *listFlags) bind(cmd *cobra.Command, full string) {
	cmd.Flags().BoolVar(&l.noLegend, "no-legend", false, "no header line")
	cmd.Flags().BoolVar(&l.full, "full", false, full)
	cmd.Flags().StringVarP(&l.output, "output", "o", "text", "text or json")
}

// forEachRef applies do to each argument, printing those it did and
// returning every failure together: one bad reference stops no other.
func forEachRef(w io.Writer, refs []string, do func(ref string) error, done string) error {
	var errs []error
	for _, ref := range refs {
		if err := do(ref); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, done+"\n", ref)
	}
	return errors.Join(errs...)
}

func humanAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// podJSON is the JSON shape of `pod list -o json` and `pod status -o json`.
type podJSON struct {
	UUID     string        `json:"uuid"`
	Name     string        `json:"name,omitempty"`
	State    string        `json:"state"`
	Created  time.Time     `json:"created"`
	Started  *time.Time    `json:"started,omitempty"`
	Finished *time.Time    `json:"finished,omitempty"`
	ExitCode *int          `json:"exitCode,omitempty"`
	PID      int           `json:"pid,omitempty"`
	Networks []pod.Network `json:"networks,omitempty"`
	Apps     []appJSON     `json:"apps,omitempty"`
}

type appJSON struct {
	pod.AppStatus
	Image string `json:"image"`
}

func toPodJSON(p atollrt.PodInfo) podJSON {
	out := podJSON{UUID: p.UUID, State: p.State, Created: p.Created()}
	if p.Manifest != nil {
		out.Name = p.Manifest.Name
		for i, a := range p.Manifest.Apps {
			aj := appJSON{Image: a.Image.ID}
			if a.Image.Name != "" {
				aj.Image = a.Image.Name
			}
			if i < len(p.Apps) {
				aj.AppStatus = p.Apps[i]
			}
			out.Apps = append(out.Apps, aj)
		}
	}
	if p.Run != nil {
		out.Started, out.Finished, out.ExitCode = &p.Run.Started, p.Run.Finished, p.Run.ExitCode
		if p.State == "running" {
			out.PID = p.Run.PID
		}
		out.Networks = p.Run.Networks
	}
	return out
}

func newPodStatusCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var wait time.Duration
	var output string
	cmd := &cobra.Command{
		Use:   "status UUID",
		Short: "Show a pod's state, networks and apps' exit codes",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			var in atollrt.PodInfo
			if cmd.Flags().Changed("wait") {
				ctx := cmd.Context()
				if wait > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, wait)
					defer cancel()
				}
				in, err = rt.Wait(ctx, args[0])
			} else {
				in, err = rt.Status(args[0])
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(g.stdout, toPodJSON(in))
			}
			printPodStatus(g.stdout, in)
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait until the pod has exited (for at most this long; 0 = no limit)")
	cmd.Flags().Lookup("wait").NoOptDefVal = "0s"
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// printPodStatus prints rkt's key=value status lines.
func printPodStatus(w io.Writer, in atollrt.PodInfo) {
	fmt.Fprintf(w, "state=%s\n", in.State)
	fmt.Fprintf(w, "created=%s\n", in.Created().Local().Format("2006-01-02 15:04:05.000 -0700 MST"))
	if in.Run != nil {
		fmt.Fprintf(w, "started=%s\n", in.Run.Started.Local().Format("2006-01-02 15:04:05.000 -0700 MST"))
		var nets []string
		for _, n := range in.Run.Networks {
			nets = append(nets, fmt.Sprintf("%s:ip4=%s", n.Name, n.IP))
		}
		fmt.Fprintf(w, "networks=%s\n", strings.Join(nets, ","))
		if in.State == "running" {
			fmt.Fprintf(w, "pid=%d\n", in.Run.PID)
		}
		if in.Run.Finished != nil {
			fmt.Fprintf(w, "exited=%s\n", in.Run.Finished.Local().Format("2006-01-02 15:04:05.000 -0700 MST"))
		}
	}
	for _, a := range in.Apps {
		switch {
		case a.ExitCode != nil:
			line := fmt.Sprintf("app-%s=%d", a.Name, *a.ExitCode)
			if a.OOMKilled {
				line += " (oom-killed)"
			} else if a.Signal != "" {
				line += " (" + a.Signal + ")"
			}
			if a.Error != "" {
				line += " (" + a.Error + ")"
			}
			fmt.Fprintln(w, line)
		case a.Started != nil && in.State != "running":
			// Killed with the pod before its PID 1 could record an exit.
			fmt.Fprintf(w, "app-%s=killed (no exit recorded: the pod was killed)\n", a.Name)
		}
	}
}

func newPodStopCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "stop UUID...",
		Short: "Stop running pods: SIGTERM, then SIGKILL after the stop timeout",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			return forEachRef(g.stdout, args, func(ref string) error { return rt.Stop(ref, force) }, "%s")
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "kill the pod at once (SIGKILL)")
	return cmd
}

func newPodRmCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm UUID...",
		Short: "Remove pods that are not running",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			return forEachRef(g.stdout, args, func(ref string) error { return rt.Remove(cmd.Context(), ref) }, "%q")
		},
	}
}

func newPodGCCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var o atollrt.GCOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove exited pods after a grace period, and failed prepares",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			res, err := rt.GC(cmd.Context(), o)
			if err != nil {
				return err
			}
			for _, u := range res.Marked {
				fmt.Fprintf(g.stdout, "moving pod %q to garbage\n", u)
			}
			for _, u := range res.Removed {
				fmt.Fprintf(g.stdout, "garbage: removing pod %q\n", u)
			}
			return errors.Join(res.Errors...)
		},
	}
	cmd.Flags().DurationVar(&o.GracePeriod, "grace-period", 30*time.Minute, "how long exited pods stay after being marked")
	cmd.Flags().DurationVar(&o.ExpirePrepared, "expire-prepared", 24*time.Hour, "how long prepared pods may wait to run")
	cmd.Flags().BoolVar(&o.MarkOnly, "mark-only", false, "only mark exited pods")
	return cmd
}

func newPodEnterCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "enter [--app NAME] UUID [CMD [ARGS...]]",
		Short: "Run a command in a running app, confined as the app is (default /bin/sh)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot("atoll pod enter"); err != nil {
				return err
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			code, err := rt.Enter(args[0], app, args[1:])
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode{code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app to enter (needed when the pod has several)")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newPodLogsCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var app string
	var follow, timestamps bool
	cmd := &cobra.Command{
		Use:   "logs [--app NAME] UUID",
		Short: "Print an app's output (what it wrote to stdout and stderr)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			path, err := rt.LogPath(args[0], app)
			if err != nil {
				return err
			}
			return printLog(cmd.Context(), rt, args[0], path, follow, timestamps, g.stdout)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (default: the first)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing while the pod runs")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "prefix each line with its time and stream")
	return cmd
}

// printLog prints an app's log file, "TIME STREAM TEXT" lines, as TEXT (or
// whole with timestamps); with follow, until the pod is no longer running.
func printLog(ctx context.Context, rt *atollrt.Runtime, ref, path string, follow, timestamps bool, w io.Writer) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !follow {
		return nil
	}
	for errors.Is(err, os.ErrNotExist) && follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if len(line) > 0 && strings.HasSuffix(line, "\n") {
			if !timestamps {
				if _, rest, ok := strings.Cut(line, " "); ok {
					if _, text, ok := strings.Cut(rest, " "); ok {
						line = text
					}
				}
			}
			io.WriteString(w, line)
			continue
		}
		if err != io.EOF {
			return err
		}
		if !follow {
			return nil
		}
		if len(line) > 0 {
			f.Seek(-int64(len(line)), io.SeekCurrent)
			r.Reset(f)
		}
		if in, err := rt.Status(ref); err != nil || in.State != "running" {
			// One more pass for what was written before the end.
			follow = false
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func newPodCatManifestCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cat-manifest UUID",
		Short: "Print a pod's manifest",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			in, err := rt.Status(args[0])
			if err != nil {
				return err
			}
			if in.Manifest == nil {
				return fmt.Errorf("pod %s: no manifest: it is %s", in.UUID, in.State)
			}
			return printJSON(g.stdout, in.Manifest)
		},
	}
}

func newPodExportCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var o atollrt.ExportOptions
	cmd := &cobra.Command{
		Use:   "export [--app NAME] [--format docker-archive|oci] [--name NAME[:TAG]] [--overwrite] UUID DEST",
		Short: "Write an exited or prepared pod's app, with what it changed, as a new image",
		Long: `Export writes the app's image plus one layer holding what the app changed in
its root filesystem (files written, removed, replaced) as a new image at
DEST, with the image's entrypoint, command, environment, user and working
directory. UUID may be a unique prefix or the pod's --name. Like rkt
export, it refuses a running pod: stop it first. A prepared pod gives its
image with an empty layer. DEST is a docker-archive tar (docker load, atoll
image import) or an OCI layout directory; an existing DEST is replaced
only with --overwrite. The image is not stored: import it with
atoll image import DEST --name NAME.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Format != "docker-archive" && o.Format != "oci" {
				return usagef("--format=%s: want docker-archive or oci", o.Format)
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("atoll pod export needs root: it reads what the app wrote, whoever owns it")
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			_, err = rt.Export(cmd.Context(), args[0], args[1], o)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%w (give --overwrite to replace it)", err)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.App, "app", "", "the app to export (needed when the pod has several)")
	cmd.Flags().StringVar(&o.Format, "format", "docker-archive", "docker-archive or oci")
	cmd.Flags().StringVar(&o.Name, "name", "", "the name the image carries in DEST, such as example.com/web:2 (default: none)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace DEST if it exists")
	return cmd
}
