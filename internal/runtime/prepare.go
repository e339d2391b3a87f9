package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"atoll.dev/atoll/internal/runtime/caps"
	"atoll.dev/atoll/internal/runtime/image"
	"atoll.dev/atoll/internal/runtime/network"
	"atoll.dev/atoll/internal/runtime/pod"
	"atoll.dev/atoll/internal/runtime/seccomp"
)

// AppOptions describe one app of a pod (rkt's per-app flags).
type AppOptions struct {
	// Image is an image name, ID or ID prefix in the store, a path to an
	// OCI layout or docker-archive, or a docker:// / oci: reference.
	Image string
	// Name is the app's name; by default the last path element of the
	// image name.
	Name string
	// Exec replaces the image's entrypoint; Args (when ArgsSet) replace its
	// command.
	Exec       string
	Args       []string
	ArgsSet    bool
	User       string
	Group      string
	WorkingDir string
	// Env entries are KEY=VALUE (--set-env); EnvFiles hold such lines
	// (--set-env-file); InheritEnv passes the caller's environment.
	Env            []string
	EnvFiles       []string
	InheritEnv     bool
	CapsRetain     []string
	CapsRemove     []string
	Seccomp        string
	ReadOnlyRootfs bool
	Mounts         []pod.Mount
	// Memory ("512M", "1Gi"), CPU ("500m", "2") and PidsLimit are the
	// app's limits.
	Memory    string
	CPU       string
	PidsLimit int64
	Stdin     string // null (default), stream
	Stdout    string // stream (default), log, null
	Stderr    string // stream (default), log, null
}

// PodOptions describe a pod to prepare.
type PodOptions struct {
	Apps     []AppOptions
	Name     string
	Hostname string
	Volumes  []pod.Volume
	// Net is "host", "none", or networks ("default", CNI names); empty is
	// "default".
	Net   []string
	Ports []string
	DNS   []string
	// Insecure turns protections off (--insecure-options).
	Insecure pod.Insecure
	// Interactive gives the (single) app the caller's terminal or stdin.
	Interactive bool
	// Signature is a detached signature for the first image, when it is
	// fetched or imported here.
	Signature string
}

// Prepare resolves the images (importing or fetching those not in the
// store), checks every option, and writes the pod: it returns the pod
// locked in the prepare phase, for Run or MarkPrepared.
func (rt *Runtime) Prepare(ctx context.Context, o PodOptions) (_ *pod.Pod, err error) {
	if len(o.Apps) == 0 {
		return nil, fmt.Errorf("a pod needs at least one image")
	}
	if o.Interactive && len(o.Apps) != 1 {
		return nil, fmt.Errorf("--interactive works with one app only, got %d", len(o.Apps))
	}
	m := &pod.Manifest{Name: o.Name, Created: time.Now().UTC(), Volumes: o.Volumes, DNS: o.DNS, Insecure: o.Insecure}
	if m.Net, err = netSpec(o.Net, o.Ports); err != nil {
		return nil, err
	}
	if err := checkVolumes(o.Volumes); err != nil {
		return nil, err
	}
	// The pod exists before its images are unpacked, and records them
	// first, so that neither `atoll image rm` nor image gc can take them
	// away in between.
	p, err := rt.Pods.Create()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Remove()
		}
	}()
	claim := &pod.Manifest{Name: o.Name, Created: m.Created}
	reserve := func(img *image.Image) error { return rt.claimImage(p, claim, img) }
	names := map[string]bool{}
	for i, ao := range o.Apps {
		sig := ""
		if i == 0 {
			sig = o.Signature
		}
		var app *pod.App
		if app, err = rt.prepareApp(ctx, ao, o, sig, reserve); err != nil {
			return nil, err
		}
		if names[app.Name] {
			return nil, fmt.Errorf("two apps named %q: give one --name", app.Name)
		}
		names[app.Name] = true
		for _, mt := range app.Mounts {
			if _, ok := m.Volume(mt.Volume); !ok {
				return nil, fmt.Errorf("app %s: --mount volume=%s: no --volume named %q", app.Name, mt.Volume, mt.Volume)
			}
		}
		if i == 0 {
			m.Resources = app.Resources
		} else {
			m.Resources = m.Resources.Add(app.Resources)
		}
		m.Apps = append(m.Apps, *app)
	}
	m.Hostname = o.Hostname
	if m.Hostname == "" {
		m.Hostname = "atoll-" + p.UUID
	}
	if err = rt.writePod(p, m); err != nil {
		return nil, err
	}
	return p, nil
}

// claimImage records in a pod being prepared that it uses img, before its
// layers are unpacked: podImages counts the pod's claim as it counts a
// manifest.
func (rt *Runtime) claimImage(p *pod.Pod, claim *pod.Manifest, img *image.Image) error {
	claim.Apps = append(claim.Apps, pod.App{Image: pod.ImageRef{ID: img.ID}, Layers: rt.Images.DirKeys(img)})
	return p.WriteManifest(claim)
}

func (rt *Runtime) writePod(p *pod.Pod, m *pod.Manifest) error {
	dir := p.Dir()
	for _, app := range m.Apps {
		for _, sub := range []string{"rootfs", "upper", "work"} {
			if err := os.MkdirAll(filepath.Join(pod.AppDir(dir, app.Name), sub), 0o755); err != nil {
				return fmt.Errorf("pod %s: %w", p.UUID, err)
			}
		}
	}
	for _, v := range m.Volumes {
		if v.Kind != "empty" {
			continue
		}
		vdir := filepath.Join(dir, "volumes", v.Name)
		mode := os.FileMode(0o755)
		if v.Mode != "" {
			n, _ := strconv.ParseUint(v.Mode, 8, 32)
			mode = os.FileMode(n)
		}
		if err := os.MkdirAll(vdir, mode); err != nil {
			return fmt.Errorf("pod %s: volume %s: %w", p.UUID, v.Name, err)
		}
		if err := os.Chmod(vdir, mode); err != nil {
			return fmt.Errorf("pod %s: volume %s: %w", p.UUID, v.Name, err)
		}
		if err := os.Chown(vdir, v.UID, v.GID); err != nil {
			return fmt.Errorf("pod %s: volume %s: %w", p.UUID, v.Name, err)
		}
	}
	return p.WriteManifest(m)
}

// prepareApp resolves the app's image, has reserve record it in the pod,
// then unpacks it and checks the app's options.
func (rt *Runtime) prepareApp(ctx context.Context, ao AppOptions, o PodOptions, signature string, reserve func(*image.Image) error) (*pod.App, error) {
	img, err := rt.resolveImage(ctx, ao.Image, o.Insecure.Image, signature)
	if err != nil {
		return nil, err
	}
	if err := reserve(img); err != nil {
		return nil, err
	}
	layers, err := rt.Images.RootfsLayers(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ao.Image, err)
	}
	cfg := img.Config.Config
	app := &pod.App{
		Name:           ao.Name,
		Image:          pod.ImageRef{ID: img.ID},
		User:           cfg.User,
		WorkingDir:     cfg.WorkingDir,
		Layers:         layers,
		ReadOnlyRootfs: ao.ReadOnlyRootfs,
		Seccomp:        ao.Seccomp,
		Mounts:         ao.Mounts,
		Stdin:          orDefault(ao.Stdin, "null"),
		Stdout:         orDefault(ao.Stdout, "stream"),
		Stderr:         orDefault(ao.Stderr, "stream"),
		Terminal:       o.Interactive && isTerminal(os.Stdin),
	}
	if len(img.Names) > 0 {
		app.Image.Name = img.Names[0]
	}
	if app.Name == "" {
		app.Name = appName(app.Image.Name, img.ID)
	}
	if !validName(app.Name) {
		return nil, fmt.Errorf("app name %q: use lowercase letters, digits and '-', starting with a letter or digit", app.Name)
	}
	if o.Interactive {
		app.Stdin = "stream"
	}
	for _, s := range []struct{ flag, v string }{{"--stdin", app.Stdin}, {"--stdout", app.Stdout}, {"--stderr", app.Stderr}} {
		allowed := map[string]bool{"null": true, "stream": true, "log": s.flag != "--stdin"}
		if !allowed[s.v] {
			return nil, fmt.Errorf("app %s: %s=%s: want null, stream or log (log only for output)", app.Name, s.flag, s.v)
		}
	}
	// The command: entrypoint and cmd of the image, each replaceable.
	entry, args := cfg.Entrypoint, cfg.Cmd
	if ao.Exec != "" {
		entry, args = []string{ao.Exec}, nil
	}
	if ao.ArgsSet {
		args = ao.Args
	}
	app.Exec = append(append([]string(nil), entry...), args...)
	if len(app.Exec) == 0 {
		return nil, fmt.Errorf("app %s: image %s has no entrypoint or command: give one with --exec", app.Name, ao.Image)
	}
	if ao.User != "" {
		app.User = ao.User
	}
	app.Group = ao.Group
	if ao.WorkingDir != "" {
		app.WorkingDir = ao.WorkingDir
	}
	if app.WorkingDir != "" && !path.IsAbs(app.WorkingDir) {
		return nil, fmt.Errorf("app %s: working directory %q is not absolute", app.Name, app.WorkingDir)
	}
	if app.Env, err = appEnv(cfg.Env, ao); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	set, err := caps.Resolve(ao.CapsRetain, ao.CapsRemove)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	app.Caps = set.Names()
	if ao.Seccomp != "" {
		if _, err := seccomp.ParseRkt(ao.Seccomp, set); err != nil {
			return nil, fmt.Errorf("app %s: --seccomp: %w", app.Name, err)
		}
	}
	if app.Resources, err = resources(ao); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	for _, mt := range ao.Mounts {
		if !path.IsAbs(mt.Target) {
			return nil, fmt.Errorf("app %s: --mount target %q is not absolute", app.Name, mt.Target)
		}
	}
	return app, nil
}

// resolveImage finds an image in the store, or imports or fetches it.
func (rt *Runtime) resolveImage(ctx context.Context, ref string, insecure bool, signature string) (*image.Image, error) {
	fetchForm := strings.HasPrefix(ref, "docker://") || strings.HasPrefix(ref, "oci:") || strings.HasPrefix(ref, "docker-archive:")
	if !fetchForm {
		img, err := rt.Images.Get(ref)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	verify := rt.verifier(insecure)
	if _, err := os.Stat(ref); err == nil && !fetchForm {
		return rt.Images.Import(ctx, ref, image.ImportOptions{Verify: verify, Signature: signature})
	}
	if !fetchForm {
		return nil, fmt.Errorf("image %s: %w: import it or fetch it first (atoll image fetch)", ref, image.ErrNotFound)
	}
	return rt.Images.Fetch(ctx, ref, image.FetchOptions{ImportOptions: image.ImportOptions{Verify: verify, Signature: signature}})
}

// verifier is the trust store, or nil when image checks are off.
func (rt *Runtime) verifier(insecure bool) image.Verifier {
	if insecure {
		return nil
	}
	return rt.Trust
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func validName(s string) bool { return appNameRE.MatchString(s) }

// appName derives an app's name from its image name: "example.com/web:1.0"
// gives "web".
func appName(imageName, id string) string {
	n := imageName
	if i := strings.LastIndex(n, "/"); i >= 0 {
		n = n[i+1:]
	}
	if i := strings.IndexAny(n, ":@"); i >= 0 {
		n = n[:i]
	}
	n = strings.ToLower(n)
	var b strings.Builder
	for _, c := range n {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	n = strings.Trim(b.String(), "-")
	if n == "" {
		n = "app-" + strings.TrimPrefix(id, "sha256:")[:12]
	}
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// appEnv builds the environment with rkt's precedence: caller (with
// --inherit-env) < image < --set-env-file < --set-env.
func appEnv(imageEnv []string, ao AppOptions) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(kv, from string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("environment %q from %s: want KEY=VALUE", kv, from)
		}
		if _, seen := vals[k]; !seen {
			order = append(order, k)
		}
		vals[k] = v
		return nil
	}
	if ao.InheritEnv {
		for _, kv := range os.Environ() {
			if err := set(kv, "the caller"); err != nil {
				return nil, err
			}
		}
	}
	for _, kv := range imageEnv {
		if err := set(kv, "the image"); err != nil {
			return nil, err
		}
	}
	for _, file := range ao.EnvFiles {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--set-env-file: %w", err)
		}
		sc := bufio.NewScanner(f)
		line := 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			if err := set(text, fmt.Sprintf("%s:%d", file, line)); err != nil {
				f.Close()
				return nil, err
			}
		}
		f.Close()
	}
	for _, kv := range ao.Env {
		if err := set(kv, "--set-env"); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

func resources(ao AppOptions) (pod.Resources, error) {
	var r pod.Resources
	var err error
	if ao.Memory != "" {
		if r.MemoryBytes, err = ParseQuantity(ao.Memory); err != nil {
			return r, fmt.Errorf("--memory: %w", err)
		}
		if r.MemoryBytes < 4<<20 {
			return r, fmt.Errorf("--memory=%s: at least 4M, since the pod's PID 1 counts too", ao.Memory)
		}
	}
	if ao.CPU != "" {
		if r.CPUMilli, err = parseCPU(ao.CPU); err != nil {
			return r, fmt.Errorf("--cpu: %w", err)
		}
	}
	if ao.PidsLimit < 0 {
		return r, fmt.Errorf("--pids-limit=%d: want a positive number", ao.PidsLimit)
	}
	r.PidsLimit = ao.PidsLimit
	return r, nil
}

// ParseQuantity reads a size in Kubernetes' and rkt's units: "128M",
// "1G", "512Mi", "1.5Gi", "1048576".
func ParseQuantity(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	}
	num, mult := s, 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q: want a size such as 128M, 512Mi or 1G", s)
	}
	return int64(v * mult), nil
}

// parseCPU reads a CPU amount: "500m" (thousandths) or "1.5" (CPUs).
func parseCPU(s string) (int64, error) {
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a CPU amount such as 500m or 1.5", s)
		}
		return n, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1e6 {
		return 0, fmt.Errorf("%q: want a CPU amount such as 500m or 1.5", s)
	}
	return int64(v * 1000), nil
}

func netSpec(nets, ports []string) (pod.Net, error) {
	var n pod.Net
	if len(nets) == 0 {
		nets = []string{"default"}
	}
	switch {
	case len(nets) == 1 && (nets[0] == "host" || nets[0] == "none"):
		n.Mode = nets[0]
	default:
		n.Mode = "contained"
		for _, name := range nets {
			if name == "host" || name == "none" {
				return n, fmt.Errorf("--net=%s cannot be combined with other networks", name)
			}
			if name == "" {
				return n, fmt.Errorf("--net: empty network name")
			}
		}
		n.Networks = nets
	}
	for _, p := range ports {
		pm, err := network.ParsePort(p)
		if err != nil {
			return n, fmt.Errorf("--port: %w", err)
		}
		if n.Mode != "contained" {
			return n, fmt.Errorf("--port=%s needs the pod's own network, not --net=%s", p, n.Mode)
		}
		n.Ports = append(n.Ports, pod.Port{ContainerPort: pm.ContainerPort, HostPort: pm.HostPort, Protocol: pm.Protocol, HostIP: pm.HostIP})
	}
	return n, nil
}

func checkVolumes(vols []pod.Volume) error {
	seen := map[string]bool{}
	for _, v := range vols {
		if !validName(v.Name) {
			return fmt.Errorf("volume name %q: use lowercase letters, digits and '-'", v.Name)
		}
		if seen[v.Name] {
			return fmt.Errorf("two volumes named %q", v.Name)
		}
		seen[v.Name] = true
		switch v.Kind {
		case "host":
			if !filepath.IsAbs(v.Source) {
				return fmt.Errorf("volume %s: source %q is not an absolute path", v.Name, v.Source)
			}
			if _, err := os.Stat(v.Source); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case "empty":
			if v.Mode != "" {
				if _, err := strconv.ParseUint(v.Mode, 8, 32); err != nil {
					return fmt.Errorf("volume %s: mode %q: want octal such as 0755", v.Name, v.Mode)
				}
			}
		default:
			return fmt.Errorf("volume %s: kind %q: want host or empty", v.Name, v.Kind)
		}
	}
	return nil
}
