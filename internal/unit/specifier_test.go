package unit

import (
	"errors"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	name, err := ParseName(`web-api@a-b\x20c.service`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := Context{
		Name:      name,
		Hostname:  "node1.example.com",
		MachineID: "2f3b1b4c5d6e7f8091a2b3c4d5e6f708",
		BootID:    "0123456789abcdef0123456789abcdef",
	}
	tests := []struct{ in, want string }{
		{"no specifiers", "no specifiers"},
		{"%n", `web-api@a-b\x20c.service`},
		{"%N", `web-api@a-b\x20c`},
		{"%p", "web-api"},
		{"%P", "web/api"},
		{"%i", `a-b\x20c`},
		{"%I", "a/b c"},
		{"%H", "node1.example.com"},
		{"%l", "node1"},
		{"%m", "2f3b1b4c5d6e7f8091a2b3c4d5e6f708"},
		{"%b", "0123456789abcdef0123456789abcdef"},
		{"100%%", "100%"},
		{"%%i", "%i"},
		{"trailing %", "trailing %"},
		{"/run/%p/%i.pid on %H", `/run/web-api/a-b\x20c.pid on node1.example.com`},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, ctx)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	template, _ := ParseName("web@.service")
	if got, err := Expand("[%i][%I]%n", Context{Name: template}); err != nil || got != "[][]web@.service" {
		t.Errorf("Expand on a template = %q, %v; want empty instance", got, err)
	}

	bad := []struct {
		in   string
		ctx  Context
		want string
	}{
		{"%z", ctx, "%z: unknown to systemd"},
		{"%é", ctx, "%é: unknown to systemd"},
		{"%t/x.pid", ctx, "%t (runtime directory): not supported"},
		{"%n", Context{}, "%n: no unit name given"},
		{"%H", Context{Name: name}, "%H: host name not known"},
		{"%m", Context{Name: name}, "%m: machine ID not known"},
		{"%b", Context{Name: name}, "%b: boot ID not known"},
		{"%I", Context{Name: Name{Prefix: "x", Instance: `bad\q`, Type: "service"}}, `\ not followed by xNN`},
	}
	for _, tt := range bad {
		_, err := Expand(tt.in, tt.ctx)
		if !errors.Is(err, ErrSpecifier) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Expand(%q) error = %v, want ErrSpecifier with %q", tt.in, err, tt.want)
		}
	}
}

func TestFileExpand(t *testing.T) {
	text := `[Unit]
Description=Web %i on %H

[Service]
ExecStart=/bin/web \
  --name=%n \
  --id=%I
Environment=PCT=100%%

[X-Fleet]
Conflicts=%p@*.service
`
	f, _, err := Parse("web@.service", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Expand(Context{Hostname: "h"}); err == nil || !strings.Contains(err.Error(), "is a template") {
		t.Errorf("Expand of a template: error = %v, want one saying to instantiate first", err)
	}
	inst, err := f.Instance(`a\x2db`)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Name != `web@a\x2db.service` {
		t.Errorf("Instance name = %q", inst.Name)
	}
	if inst.Hash() != f.Hash() {
		t.Errorf("Instance changed the options: hash %s, template %s", inst.Hash(), f.Hash())
	}
	got, err := inst.Expand(Context{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]string{
		{"Unit", "Description"}:    `Web a\x2db on h`,
		{"Service", "ExecStart"}:   `/bin/web    --name=web@a\x2db.service    --id=a-b`,
		{"Service", "Environment"}: "PCT=100%",
		{"X-Fleet", "Conflicts"}:   "%p@*.service",
	}
	for key, value := range want {
		if v, _ := got.Value(key[0], key[1]); v != value {
			t.Errorf("expanded [%s] %s = %q, want %q", key[0], key[1], v, value)
		}
	}
	if v, _ := inst.Value("Unit", "Description"); v != "Web %i on %H" {
		t.Errorf("Expand changed its receiver: Description = %q", v)
	}

	bad, _, err := Parse("x@.service", strings.NewReader("[Service]\nExecStart=/bin/x\nUser=%u\n"))
	if err != nil {
		t.Fatal(err)
	}
	badInst, _ := bad.Instance("1")
	if _, err := badInst.Expand(Context{}); !errors.Is(err, ErrSpecifier) || !strings.HasPrefix(err.Error(), "x@.service:3: User=: ") {
		t.Errorf("Expand error = %v, want ErrSpecifier at x@.service:3 User=", err)
	}

	// An escaped newline in the instance must not become a line break.
	nl, _ := f.Instance(`x\x0ay`)
	if _, err := nl.Expand(Context{Hostname: "h"}); !errors.Is(err, ErrSpecifier) || !strings.Contains(err.Error(), "control character U+000A") {
		t.Errorf("Expand with a newline in %%I: error = %v, want a control character refusal", err)
	}
}
