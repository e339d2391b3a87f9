package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"

	atollrt "atoll.dev/atoll/internal/runtime"
	"atoll.dev/atoll/internal/runtime/pod"
)

func parseRun(args ...string) (atollrt.PodOptions, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var pf podFlags
	pf.bind(fs)
	return parsePodArgs(fs, &pf, args)
}

// rkt's command line: [POD FLAGS] IMAGE [APP FLAGS] [[--] ARGS] [--- IMAGE ...].
func TestParsePodArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want atollrt.PodOptions
	}{
		{
			name: "image only: the image's command",
			args: []string{"web"},
			want: atollrt.PodOptions{Apps: []atollrt.AppOptions{{Image: "web"}}},
		},
		{
			name: "arguments after the image, with and without --",
			args: []string{"web", "--", "-v", "x"},
			want: atollrt.PodOptions{Apps: []atollrt.AppOptions{{Image: "web", Args: []string{"-v", "x"}, ArgsSet: true}}},
		},
		{
			name: "an empty -- clears the image's arguments",
			args: []string{"web", "--"},
			want: atollrt.PodOptions{Apps: []atollrt.AppOptions{{Image: "web", ArgsSet: true}}},
		},
		{
			name: "--name before the image names the pod, after it the app",
			args: []string{"--name", "pod1", "web", "--name", "front", "--", "serve"},
			want: atollrt.PodOptions{Name: "pod1", Apps: []atollrt.AppOptions{{Image: "web", Name: "front", Args: []string{"serve"}, ArgsSet: true}}},
		},
		{
			name: "app flags before the image are every app's defaults; after one, that app's",
			args: []string{"--memory", "64M", "--set-env", "A=1", "web", "--memory", "128M", "---", "db", "--user", "99"},
			want: atollrt.PodOptions{Apps: []atollrt.AppOptions{
				{Image: "web", Memory: "128M", Env: []string{"A=1"}},
				{Image: "db", Memory: "64M", Env: []string{"A=1"}, User: "99"},
			}},
		},
		{
			name: "pod flags, volumes, mounts and insecure options",
			args: []string{
				"--net=default,backend", "--port", "80:8080", "--dns", "192.0.2.53", "--hostname", "h",
				"--volume", "data,kind=host,source=/srv,readOnly=true", "--volume", "tmp,kind=empty,mode=0700,uid=5,gid=6",
				"--insecure-options=image,seccomp", "--interactive",
				"web", "--mount", "volume=data,target=/data", "--readonly-rootfs", "--caps-retain", "CAP_NET_BIND_SERVICE,CAP_CHOWN",
			},
			want: atollrt.PodOptions{
				Net: []string{"default", "backend"}, Ports: []string{"80:8080"}, DNS: []string{"192.0.2.53"}, Hostname: "h",
				Volumes: []pod.Volume{
					{Name: "data", Kind: "host", Source: "/srv", ReadOnly: true},
					{Name: "tmp", Kind: "empty", Mode: "0700", UID: 5, GID: 6},
				},
				Insecure:    pod.Insecure{Image: true, Seccomp: true},
				Interactive: true,
				Apps: []atollrt.AppOptions{{
					Image: "web", Mounts: []pod.Mount{{Volume: "data", Target: "/data"}}, ReadOnlyRootfs: true,
					CapsRetain: []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRun(tt.args...)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parse %q (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParsePodArgsRefuses(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error
	}{
		{nil, "an image is needed"},
		{[]string{"--memory", "1G"}, "an image is needed"},
		{[]string{"web", "---"}, "--- must be followed by an image"},
		{[]string{"web", "---", "--user", "1"}, `want an image, got "--user"`},
		{[]string{"web", "--no-such-flag"}, "no-such-flag"},
		{[]string{"--volume", "data,source=/srv", "web"}, "kind= is needed"},
		{[]string{"--volume", "data,kind=host,readOnly=maybe", "web"}, "readOnly=maybe"},
		{[]string{"--volume", "data,kind=host,colour=blue", "web"}, `unknown key "colour"`},
		{[]string{"web", "--mount", "volume=data"}, "want volume=NAME,target=PATH"},
		{[]string{"web", "--mount", "volume=data,target=/d,extra=1"}, `unknown key "extra"`},
		{[]string{"--insecure-options=everything", "web"}, "--insecure-options=everything"},
	}
	for _, tt := range tests {
		_, err := parseRun(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse %q: %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// The volume and mount parsers read a user's command line: whatever they
// are given, they return a value or an error naming the input, and what
// they accept has what the runtime needs.
func FuzzParseVolumeAndMount(f *testing.F) {
	for _, s := range []string{
		"data,kind=host,source=/srv,readOnly=true", "tmp,kind=empty,mode=0700,uid=5,gid=6", "x,kind=host,recursive=false",
		"volume=data,target=/data", ",", "=", "a,kind", "volume=,target=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseVolume(s); err == nil {
			if v.Kind == "" {
				t.Errorf("parseVolume(%q) accepted a volume with no kind", s)
			}
		} else if !strings.Contains(err.Error(), s) {
			t.Errorf("parseVolume(%q): error %q does not name the input", s, err)
		}
		if m, err := parseMount(s); err == nil {
			if m.Volume == "" || m.Target == "" {
				t.Errorf("parseMount(%q) accepted %+v", s, m)
			}
		} else if !strings.Contains(err.Error(), s) {
			t.Errorf("parseMount(%q): error %q does not name the input", s, err)
		}
	})
}
