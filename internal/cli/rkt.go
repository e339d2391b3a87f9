package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// MultiCall returns the command line to run for args, given how the binary
// was started: under the name of a tool atoll stands in for (a symlink
// rkt -> atoll), the arguments go to that tool's subcommand, so
// `rkt list` runs as `atoll rkt list`. Other names leave args alone.
func MultiCall(args []string) []string {
	if len(args) == 0 {
		return args
	}
	switch filepath.Base(args[0]) {
	case "rkt":
		return append([]string{args[0], "rkt"}, args[1:]...)
	}
	return args
}

const rktLong = `Run a rkt command line: rkt's verbs and global flags mapped onto atoll pod and
atoll image. The binary does the same when it is started as rkt (a symlink
rkt -> atoll), so scripts and units written for rkt keep working.

  rkt run|prepare|run-prepared|list|status|stop|rm|gc|enter|cat-manifest
                         atoll pod <same verb>
  rkt export UUID FILE   atoll pod export UUID FILE (a docker-archive, not an ACI)
  rkt fetch IMAGE        atoll image fetch IMAGE; a path (/..., ./..., file://...)
                         is atoll image import PATH
  rkt trust KEYFILE      atoll image trust KEYFILE
  rkt image list         atoll image ls
  rkt image rm|gc|export atoll image rm|gc|export
  rkt image cat-manifest atoll image inspect
  rkt version            atoll version

Global flags, before the verb or among its flags (for run, prepare and
enter, only before the first image or UUID):
  --dir DIR              atoll's state directory (pods/ and images/ in it;
                         rkt's own store there is not read). Default: under
                         $ATOLL_ROOT, /var/lib/atoll.
  --local-config DIR     atoll's config directory: DIR/trustedkeys and DIR/net.d,
                         laid out as rkt's, so --local-config=/etc/rkt reads
                         rkt's trusted keys and networks.
  --insecure-options=... moved to the verbs that take it (run, prepare, fetch),
                         keeping the values each understands.
  --debug, --system-config, --user-config, --trust-keys-from-https
                         accepted and ignored, with a warning.

--format=json on list, status and image list is -o json. rkt verbs atoll has
no equivalent for (api-service, metadata-service, config, attach, app,
image extract|render|verify) are refused, naming the verb.`

func newRktCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "rkt [GLOBAL FLAGS] VERB [ARGS...]",
		Short:              "Run a rkt command line (what the binary does when started as rkt)",
		Long:               rktLong,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			tr, err := translateRkt(args)
			if err != nil {
				return err
			}
			for _, w := range tr.warnings {
				fmt.Fprintf(g.stderr, "rkt: warning: %s\n", w)
			}
			// A root of its own: the translated line is parsed afresh, as
			// if typed as atoll's.
			inner := &globals{stdout: g.stdout, stderr: g.stderr}
			root := newRoot(inner)
			root.SetArgs(tr.args)
			root.SetOut(g.stdout)
			root.SetErr(g.stderr)
			if err := root.ExecuteContext(cmd.Context()); err != nil {
				return err
			}
			if tr.trailer != "" {
				fmt.Fprintln(g.stdout, tr.trailer)
			}
			return nil
		},
	}
}

// rktTranslation is a rkt command line as atoll's.
type rktTranslation struct {
	args     []string // atoll's arguments, without the program name
	warnings []string // about flags accepted and ignored
	trailer  string   // a line printed after the command's output
}

// isRktPodVerb tells the rkt verbs that are `atoll pod` verbs of the same
// name.
func isRktPodVerb(verb string) bool {
	switch verb {
	case "run", "prepare", "run-prepared", "list", "status", "stop", "rm", "gc", "enter", "cat-manifest", "export":
		return true
	}
	return false
}

// rktImageVerb maps a `rkt image` verb to its `atoll image` verb.
func rktImageVerb(verb string) (string, bool) {
	switch verb {
	case "list", "ls":
		return "ls", true
	case "rm", "gc", "export":
		return verb, true
	case "cat-manifest":
		return "inspect", true
	}
	return "", false
}

// rktMissing says why atoll has no equivalent of a rkt verb; "" for the
// verbs it has or rkt never had.
func rktMissing(verb string) string {
	switch verb {
	case "api-service":
		return "atoll has no API service: read pods with atoll pod list -o json"
	case "metadata-service":
		return "atoll has no metadata service"
	case "config":
		return "atoll has no rkt configuration to print"
	case "attach":
		return "atoll pods have no attachable streams: use atoll pod logs, or run with --interactive"
	case "app":
		return "atoll has no experimental app commands (give a pod all its apps at run time)"
	case "image extract", "image render":
		return "write the image with atoll image export instead"
	case "image verify":
		return "atoll verifies signatures when it imports and fetches"
	}
	return ""
}

// rktGlobal is a global flag of rkt's.
type rktGlobal struct {
	takesValue bool
	// ignored, when set, is why atoll ignores the flag.
	ignored string
}

func rktGlobalFlag(name string) (rktGlobal, bool) {
	switch name {
	case "dir", "local-config", "insecure-options":
		return rktGlobal{takesValue: true}, true
	case "system-config":
		return rktGlobal{takesValue: true, ignored: "atoll has no vendor configuration directory"}, true
	case "user-config":
		return rktGlobal{takesValue: true, ignored: "atoll has no per-user configuration directory"}, true
	case "debug":
		return rktGlobal{ignored: "atoll prints no debug output; its errors carry their context"}, true
	case "trust-keys-from-https":
		return rktGlobal{ignored: "atoll trusts only the key files given to rkt trust"}, true
	}
	return rktGlobal{}, false
}

// rktGlobalValues are the global flags found, in order.
type rktGlobalValues struct {
	dir, localConfig string
	insecure         []string
	warnings         []string
}

// takeGlobal reads the global flag at args[0], if it is one, and returns
// how many arguments it took (0 if it is not a global flag).
func (v *rktGlobalValues) takeGlobal(args []string) (int, error) {
	a := args[0]
	if !strings.HasPrefix(a, "--") {
		return 0, nil
	}
	name, value, hasValue := strings.Cut(a[2:], "=")
	g, ok := rktGlobalFlag(name)
	if !ok {
		return 0, nil
	}
	n := 1
	if g.takesValue && !hasValue {
		if len(args) < 2 {
			return 0, usagef("rkt: flag --%s needs a value", name)
		}
		value, n = args[1], 2
	}
	switch {
	case g.ignored != "":
		v.warnings = append(v.warnings, fmt.Sprintf("--%s is ignored: %s", name, g.ignored))
	case name == "dir":
		v.dir = value
	case name == "local-config":
		v.localConfig = value
	case name == "insecure-options":
		for _, o := range strings.Split(value, ",") {
			if o = strings.TrimSpace(o); o != "" {
				v.insecure = append(v.insecure, o)
			}
		}
	}
	return n, nil
}

// translateRkt turns a rkt command line (the arguments after "rkt") into
// atoll's. Global flags are read before the verb and after it, up to the
// first argument for the verbs whose arguments may look like flags (run,
// prepare, enter: app arguments), and up to "--" for the others.
func translateRkt(args []string) (rktTranslation, error) {
	var tr rktTranslation
	var gv rktGlobalValues
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if args[i] == "-h" || args[i] == "--help" {
			return rktTranslation{args: []string{"help", "rkt"}}, nil
		}
		n, err := gv.takeGlobal(args[i:])
		if err != nil {
			return tr, err
		}
		if n == 0 {
			return tr, usagef("rkt: unknown global flag %s", args[i])
		}
		i += n
	}
	if i == len(args) || args[i] == "help" {
		if i+1 < len(args) {
			// rkt help VERB: the verb's help.
			help, err := translateRkt(append(append([]string(nil), args[i+1:]...), "--help"))
			return help, err
		}
		return rktTranslation{args: []string{"help", "rkt"}}, nil
	}
	verb, rest := args[i], args[i+1:]
	if verb == "image" {
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") && rest[0] != "--help" {
			n, err := gv.takeGlobal(rest)
			if err != nil {
				return tr, err
			}
			if n == 0 {
				return tr, usagef("rkt image: unknown flag %s before the image verb", rest[0])
			}
			rest = rest[n:]
		}
		if len(rest) == 0 || rest[0] == "--help" || rest[0] == "-h" {
			return rktTranslation{args: []string{"help", "image"}}, nil
		}
		verb, rest = "image "+rest[0], rest[1:]
	}
	if why := rktMissing(verb); why != "" {
		return tr, usagef("rkt %s: atoll has no equivalent: %s", verb, why)
	}

	// The verb's own arguments, without the global flags among them.
	stopAtArg := verb == "run" || verb == "prepare" || verb == "enter"
	var kept []string
	for j := 0; j < len(rest); {
		a := rest[j]
		if a == "--" || (stopAtArg && !strings.HasPrefix(a, "-")) {
			kept = append(kept, rest[j:]...)
			break
		}
		n, err := gv.takeGlobal(rest[j:])
		if err != nil {
			return tr, err
		}
		if n == 0 {
			kept = append(kept, a)
			n = 1
		}
		j += n
	}

	var atollVerb []string
	switch {
	case isRktPodVerb(verb):
		atollVerb = []string{"pod", verb}
	case verb == "fetch":
		atollVerb = []string{"image", "fetch"}
		if path, ok := rktFetchPath(kept); ok {
			atollVerb = []string{"image", "import"}
			kept = replaceFirstArg(kept, path, isFetchValueFlag)
		}
	case verb == "trust":
		atollVerb = []string{"image", "trust"}
	case verb == "version":
		atollVerb = []string{"version"}
		tr.trailer = "this is atoll, answering as rkt: rkt's verbs run as atoll pod and atoll image (atoll rkt --help)"
	case strings.HasPrefix(verb, "image "):
		sub, ok := rktImageVerb(strings.TrimPrefix(verb, "image "))
		if !ok {
			return tr, usagef("rkt %s: unknown command", verb)
		}
		atollVerb = []string{"image", sub}
	default:
		return tr, usagef("rkt %s: unknown command", verb)
	}

	kept, tr.warnings = rktVerbFlags(verb, kept, gv.warnings)
	tr.args = append(tr.args, atollVerb...)
	if verb != "version" {
		if gv.dir != "" {
			tr.args = append(tr.args, "--state-dir="+gv.dir)
		}
		if gv.localConfig != "" {
			tr.args = append(tr.args, "--config-dir="+gv.localConfig)
		}
	}
	if opts, warnings := rktInsecure(verb, gv.insecure); len(opts) > 0 || len(warnings) > 0 {
		if len(opts) > 0 {
			tr.args = append(tr.args, "--insecure-options="+strings.Join(opts, ","))
		}
		tr.warnings = append(tr.warnings, warnings...)
	}
	tr.args = append(tr.args, kept...)
	return tr, nil
}

// rktVerbFlags adapts the verb's own flags where rkt's and atoll's differ.
func rktVerbFlags(verb string, args, warnings []string) ([]string, []string) {
	var out []string
	for j := 0; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			out = append(out, args[j:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			name = ""
		}
		switch {
		case name == "format" && (verb == "list" || verb == "status" || verb == "image list" || verb == "image ls"):
			if !hasValue && j+1 < len(args) {
				value = args[j+1]
				j++
			}
			switch value {
			case "json", "json-pretty":
				out = append(out, "--output=json")
			default:
				out = append(out, "--output=text")
			}
		case name == "pretty-print" && (verb == "cat-manifest" || verb == "image cat-manifest"):
			// atoll always indents.
		case name == "full" && verb == "fetch":
			// atoll always prints the full ID.
		case name == "skip-fingerprint-review" && verb == "trust":
			// atoll never asks: the key file is the operator's choice.
		case name == "overwrite" && verb == "image export":
			// atoll image export replaces an archive anyway.
		case name == "insecure-allow-http" && verb == "trust":
			warnings = append(warnings, "--insecure-allow-http is ignored: atoll reads keys from files only")
		case name == "grace-period" && verb == "image gc":
			if !hasValue && j+1 < len(args) {
				j++
			}
			warnings = append(warnings, "--grace-period is ignored: atoll image gc removes what no image or pod uses at once")
		default:
			out = append(out, a)
		}
	}
	return out, warnings
}

// rktInsecure keeps the --insecure-options values the atoll verb knows.
// Dropping one only keeps a protection on, so what atoll cannot honour is
// dropped with a warning rather than refused.
func rktInsecure(verb string, values []string) (kept, warnings []string) {
	var known map[string]string // rkt value -> atoll value ("" to drop silently)
	switch verb {
	case "run", "prepare":
		known = map[string]string{
			"none": "none", "image": "image", "capabilities": "capabilities", "paths": "paths",
			"seccomp": "seccomp", "all-run": "all-run", "all": "all", "all-fetch": "image", "ondisk": "",
		}
	case "fetch":
		known = map[string]string{
			"none": "none", "image": "image", "http": "http", "all-fetch": "all-fetch", "all": "all",
			"capabilities": "", "paths": "", "seccomp": "", "all-run": "", "ondisk": "",
		}
	default:
		return nil, nil // the verb has no protection to turn off
	}
	seen := map[string]bool{}
	for _, v := range values {
		to, ok := known[v]
		switch {
		case !ok:
			warnings = append(warnings, fmt.Sprintf("--insecure-options=%s is ignored by rkt %s in atoll", v, verb))
		case to != "" && !seen[to]:
			seen[to] = true
			kept = append(kept, to)
		}
	}
	return kept, warnings
}

// isFetchValueFlag tells the flags of rkt fetch (and atoll image fetch)
// that take a value in the next argument.
func isFetchValueFlag(flag string) bool {
	switch flag {
	case "--signature", "--platform", "--name", "--pull-policy":
		return true
	}
	return false
}

// rktFetchPath tells whether rkt fetch's image is a local file: an
// absolute or ./ ../ path, or a file:// URL (rkt's other forms, a name to
// discover or an https URL, are atoll's fetch references or unsupported).
func rktFetchPath(args []string) (string, bool) {
	arg, ok := firstArg(args, isFetchValueFlag)
	if !ok {
		return "", false
	}
	if p, ok := strings.CutPrefix(arg, "file://"); ok {
		return p, true
	}
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") {
		return arg, true
	}
	return "", false
}

// firstArg is the first argument that is not a flag or a flag's value.
func firstArg(args []string, isValueFlag func(string) bool) (string, bool) {
	for j := 0; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			if j+1 < len(args) {
				return args[j+1], true
			}
			return "", false
		}
		if !strings.HasPrefix(a, "-") {
			return a, true
		}
		if isValueFlag(a) {
			j++
		}
	}
	return "", false
}

func replaceFirstArg(args []string, with string, isValueFlag func(string) bool) []string {
	out := append([]string(nil), args...)
	for j := 0; j < len(out); j++ {
		a := out[j]
		if a == "--" {
			if j+1 < len(out) {
				out[j+1] = with
			}
			return out
		}
		if !strings.HasPrefix(a, "-") {
			out[j] = with
			return out
		}
		if isValueFlag(a) {
			j++
		}
	}
	return out
}
