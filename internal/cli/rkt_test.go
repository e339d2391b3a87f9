package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTranslateRkt(t *testing.T) {
	tests := []struct {
		rkt      string
		want     string
		warnings int
	}{
		// Pod verbs.
		{"run --net=host example.com/web:1.0 -- --port=80", "pod run --net=host example.com/web:1.0 -- --port=80", 0},
		{"run --interactive docker://busybox --exec /bin/sh", "pod run --interactive docker://busybox --exec /bin/sh", 0},
		{"prepare web --- sidecar", "pod prepare web --- sidecar", 0},
		{"run-prepared 1234", "pod run-prepared 1234", 0},
		{"list", "pod list", 0},
		{"list --no-legend --full", "pod list --no-legend --full", 0},
		{"list --format=json", "pod list --output=json", 0},
		{"list --format json-pretty", "pod list --output=json", 0},
		{"status --wait 1234", "pod status --wait 1234", 0},
		{"status --format=json 1234", "pod status --output=json 1234", 0},
		{"stop --force 1234 5678", "pod stop --force 1234 5678", 0},
		{"rm 1234", "pod rm 1234", 0},
		{"gc --grace-period=0s", "pod gc --grace-period=0s", 0},
		{"enter --app=web 1234 /bin/sh -c ls", "pod enter --app=web 1234 /bin/sh -c ls", 0},
		{"cat-manifest --pretty-print 1234", "pod cat-manifest 1234", 0},
		{"export --app=web 1234 web.tar", "pod export --app=web 1234 web.tar", 0},
		{"export --overwrite 1234 web.aci", "pod export --overwrite 1234 web.aci", 0},

		// Images.
		{"fetch docker://busybox", "image fetch docker://busybox", 0},
		{"fetch --full docker://busybox", "image fetch docker://busybox", 0},
		{"fetch /srv/web.tar", "image import /srv/web.tar", 0},
		{"fetch --signature web.asc ./web.tar", "image import --signature web.asc ./web.tar", 0},
		{"fetch file:///srv/web.tar", "image import /srv/web.tar", 0},
		{"trust --prefix=example.com/web key.asc", "image trust --prefix=example.com/web key.asc", 0},
		{"trust --skip-fingerprint-review --root key.asc", "image trust --root key.asc", 0},
		{"trust --insecure-allow-http --root key.asc", "image trust --root key.asc", 1},
		{"image list", "image ls", 0},
		{"image list --no-legend --format=json", "image ls --no-legend --output=json", 0},
		{"image rm example.com/web:1.0", "image rm example.com/web:1.0", 0},
		{"image gc", "image gc", 0},
		{"image gc --grace-period 1h", "image gc", 1},
		{"image export --overwrite web web.tar", "image export web web.tar", 0},
		{"image cat-manifest web", "image inspect web", 0},

		// Global flags, before the verb and among its flags.
		{"--dir=/var/lib/rkt list", "pod list --state-dir=/var/lib/rkt", 0},
		{"--dir /srv/state image list", "image ls --state-dir=/srv/state", 0},
		{"image --dir=/srv/state list", "image ls --state-dir=/srv/state", 0},
		{"list --dir=/srv/state --full", "pod list --state-dir=/srv/state --full", 0},
		{"--local-config=/etc/rkt trust --root key.asc", "image trust --config-dir=/etc/rkt --root key.asc", 0},
		{"--insecure-options=image run docker://busybox", "pod run --insecure-options=image docker://busybox", 0},
		{"run --insecure-options=image,http docker://busybox", "pod run --insecure-options=image docker://busybox", 1},
		{"--insecure-options=all-fetch,seccomp run img", "pod run --insecure-options=image,seccomp img", 0},
		{"--insecure-options=image,all-run fetch docker://busybox", "image fetch --insecure-options=image docker://busybox", 0},
		{"--insecure-options=tls fetch docker://busybox", "image fetch docker://busybox", 1},
		{"--insecure-options=image list", "pod list", 0},
		{"--debug --system-config=/usr/lib/rkt --user-config /home/u/.rkt --trust-keys-from-https=false list", "pod list", 4},
		// After the image, flags are the app's and arguments the app's.
		{"run img --debug -- --dir=x", "pod run img --debug -- --dir=x", 0},
		{"enter 1234 --dir x", "pod enter 1234 --dir x", 0},
		{"status 1234 -- --dir=x", "pod status 1234 -- --dir=x", 0},

		// Help and version.
		{"", "help rkt", 0},
		{"help", "help rkt", 0},
		{"--help", "help rkt", 0},
		{"help run", "pod run --help", 0},
		{"help image list", "image ls --help", 0},
		{"image", "help image", 0},
		{"version", "version", 0},
		{"--dir=/x version", "version", 0},
	}
	for _, tc := range tests {
		tr, err := translateRkt(strings.Fields(tc.rkt))
		if err != nil {
			t.Errorf("rkt %s: got error %v, want atoll %s", tc.rkt, err, tc.want)
			continue
		}
		if got := strings.Join(tr.args, " "); got != tc.want {
			t.Errorf("rkt %s: got atoll %s, want atoll %s", tc.rkt, got, tc.want)
		}
		if len(tr.warnings) != tc.warnings {
			t.Errorf("rkt %s: got warnings %q, want %d", tc.rkt, tr.warnings, tc.warnings)
		}
	}
}

func TestTranslateRktRefuses(t *testing.T) {
	tests := []struct{ rkt, want string }{
		{"api-service", "rkt api-service: atoll has no equivalent"},
		{"metadata-service", "rkt metadata-service: atoll has no equivalent"},
		{"config", "rkt config: atoll has no equivalent"},
		{"attach 1234", "rkt attach: atoll has no equivalent"},
		{"app add 1234 img", "rkt app: atoll has no equivalent"},
		{"image extract web /tmp/x", "rkt image extract: atoll has no equivalent"},
		{"image render web /tmp/x", "rkt image render: atoll has no equivalent"},
		{"image verify web", "rkt image verify: atoll has no equivalent"},
		{"image bogus", "rkt image bogus: unknown command"},
		{"bogus", "rkt bogus: unknown command"},
		{"--bogus list", "unknown global flag --bogus"},
		{"image --bogus list", "unknown flag --bogus"},
		{"list --dir", "--dir needs a value"},
	}
	for _, tc := range tests {
		tr, err := translateRkt(strings.Fields(tc.rkt))
		var usage usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &usage) {
			t.Errorf("rkt %s: got %q, error %v; want a usage error mentioning %q", tc.rkt, tr.args, err, tc.want)
		}
	}
}

func TestMultiCall(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"/usr/bin/rkt", "list"}, []string{"/usr/bin/rkt", "rkt", "list"}},
		{[]string{"rkt"}, []string{"rkt", "rkt"}},
		{[]string{"/usr/bin/atoll", "pod", "list"}, []string{"/usr/bin/atoll", "pod", "list"}},
		{[]string{"/opt/rkt/atoll", "version"}, []string{"/opt/rkt/atoll", "version"}},
		{nil, nil},
	}
	for _, tc := range tests {
		if got := MultiCall(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("MultiCall(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// rkt's command lines run end to end, through Main as the symlink would.
func TestRktRuns(t *testing.T) {
	state := t.TempDir()
	t.Setenv("ATOLL_ROOT", t.TempDir())
	rkt := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(MultiCall(append([]string{"/usr/local/bin/rkt"}, args...)), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, stderr := rkt("--dir="+state, "--debug", "list", "--no-legend"); code != 0 || out != "" || !strings.Contains(stderr, "--debug is ignored") {
		t.Errorf("rkt list: exit %d, stdout %q, stderr %q; want 0, nothing, a warning about --debug", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "pods")); err != nil {
		t.Errorf("rkt --dir: the state directory has no pods/: %v", err)
	}
	if code, out, _ := rkt("--dir="+state, "image", "list"); code != 0 || !strings.HasPrefix(out, "ID") {
		t.Errorf("rkt image list: exit %d, stdout %q; want 0 and a table", code, out)
	}
	if code, out, _ := rkt("version"); code != 0 || !strings.Contains(out, "this is atoll") {
		t.Errorf("rkt version: exit %d, stdout %q; want the version and a line saying it is atoll", code, out)
	}
	if code, _, stderr := rkt("attach", "1234"); code != 2 || !strings.HasPrefix(stderr, "rkt: rkt attach: atoll has no equivalent") {
		t.Errorf("rkt attach: exit %d, stderr %q; want 2 and a refusal naming the verb", code, stderr)
	}
	if code, _, stderr := rkt("--dir="+state, "status", "no-such-pod"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("rkt status of a missing pod: exit %d, stderr %q; want 1 and not found", code, stderr)
	}
	if code, out, _ := rkt(); code != 0 || !strings.Contains(out, "atoll pod") {
		t.Errorf("rkt with no verb: exit %d, stdout %q; want the mapping", code, out)
	}
	// Without the symlink.
	if code, out, _ := run(t, "rkt", "--dir="+state, "list", "--format=json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("atoll rkt list --format=json: exit %d, stdout %q; want []", code, out)
	}
}
