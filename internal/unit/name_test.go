package unit

import (
	"errors"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	// The valid cases include fleet's TestNamedUnit (unit/unit_test.go).
	tests := []struct {
		in       string
		want     Name
		template string
	}{
		{"foo.service", Name{Prefix: "foo", Type: "service"}, ""},
		{"foo@.service", Name{Prefix: "foo", Type: "service", Template: true}, "foo@.service"},
		{"foo@bar.service", Name{Prefix: "foo", Instance: "bar", Type: "service"}, "foo@.service"},
		{"foo@bar@baz.service", Name{Prefix: "foo", Instance: "bar@baz", Type: "service"}, "foo@.service"},
		{"foo.1@.service", Name{Prefix: "foo.1", Type: "service", Template: true}, "foo.1@.service"},
		{"foo.1@2.service", Name{Prefix: "foo.1", Instance: "2", Type: "service"}, "foo.1@.service"},
		{"ssh@1.socket", Name{Prefix: "ssh", Instance: "1", Type: "socket"}, "ssh@.socket"},
		{`dev-disk-by\x2duuid-1.device`, Name{Prefix: `dev-disk-by\x2duuid-1`, Type: "device"}, ""},
		{"a:b_c.d-e.mount", Name{Prefix: "a:b_c.d-e", Type: "mount"}, ""},
		{strings.Repeat("a", 247) + ".service", Name{Prefix: strings.Repeat("a", 247), Type: "service"}, ""},
	}
	for _, tt := range tests {
		got, err := ParseName(tt.in)
		if err != nil {
			t.Errorf("ParseName(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseName(%q).String() = %q", tt.in, got.String())
		}
		if got.TemplateName() != tt.template {
			t.Errorf("ParseName(%q).TemplateName() = %q, want %q", tt.in, got.TemplateName(), tt.template)
		}
	}

	bad := map[string]string{
		"":                                    "empty",
		"foo":                                 "no type suffix",
		"bar@baz":                             "no type suffix",
		".service":                            "empty prefix",
		"@foo.service":                        "empty prefix",
		"foo.snapshot":                        `unknown unit type "snapshot"`,
		"foo.":                                `unknown unit type ""`,
		"foo bar.service":                     `character ' ' is not allowed`,
		"föö.service":                         "is not allowed",
		"a/b.service":                         "is not allowed",
		strings.Repeat("a", 248) + ".service": "256 bytes long",
	}
	for in, want := range bad {
		_, err := ParseName(in)
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseName(%q) error = %v, want ErrInvalidName with %q", in, err, want)
		}
	}
}

func TestInstantiate(t *testing.T) {
	template, _ := ParseName("web@.service")
	got, err := template.Instantiate("1")
	if err != nil || got.String() != "web@1.service" || !got.IsInstance() {
		t.Errorf("Instantiate(1) = %v, %v; want web@1.service", got, err)
	}
	again, err := got.Instantiate("2")
	if err != nil || again.String() != "web@2.service" {
		t.Errorf("instance.Instantiate(2) = %v, %v; want web@2.service", again, err)
	}
	escaped, err := template.Instantiate(Escape("a b/c"))
	if err != nil || escaped.String() != `web@a\x20b-c.service` {
		t.Errorf(`Instantiate(Escape("a b/c")) = %v, %v; want web@a\x20b-c.service`, escaped, err)
	}
	plain, _ := ParseName("web.service")
	for _, tt := range []struct {
		from     Name
		instance string
		want     string
	}{
		{plain, "1", "not a template"},
		{template, "", "empty instance"},
		{template, "a b", "character ' ' is not allowed"},
		{template, strings.Repeat("x", 250), "bytes long"},
	} {
		if _, err := tt.from.Instantiate(tt.instance); !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v.Instantiate(%q) error = %v, want %q", tt.from, tt.instance, err, tt.want)
		}
	}
}

// TestEscape compares with the output of systemd-escape(1) from systemd
// 252.
func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hallöchen, Meister", `Hall\xc3\xb6chen\x2c\x20Meister`},
		{"/foo//bar/baz/", "-foo--bar-baz-"},
		{".dot", `\x2edot`},
		{"a.dot", "a.dot"},
		{"a-b", `a\x2db`},
		{"tty1", "tty1"},
		{`x\y`, `x\x5cy`},
		{"a\nb", `a\x0ab`},
		{"a@b", `a\x40b`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in == "/foo//bar/baz/" {
			continue // "//" cannot come back
		}
		if back, err := Unescape(tt.want); err != nil || back != tt.in {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
		}
	}
	if got, err := Unescape(`a\x2db-c`); err != nil || got != "a-b/c" {
		t.Errorf(`Unescape(a\x2db-c) = %q, %v; want "a-b/c" as systemd-escape -u gives`, got, err)
	}
	for _, bad := range []string{`bad\q`, `a\x`, `a\x4`, `a\xzz`, `\`} {
		if _, err := Unescape(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Unescape(%q) error = %v, want ErrInvalidName", bad, err)
		}
	}
}
