package unit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gsunit "github.com/coreos/go-systemd/v22/unit"
)

// FuzzParse checks that Parse never panics, that what it refuses is a
// *SyntaxError pointing inside the input, and that what it accepts go-systemd
// reads the same way and survives being written and read back.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"[Unit]\nDescription=Foo\n\n[Service]\nExecStart=/bin/true\n",
		"[Service]\nExecStart=/bin/echo \\\n  a \\\n# c \\\n  b\nType=simple\n",
		"[Service]\nExecStart=echo \\\n\nType=simple\n",
		"[Service]\nExecStart=a \\\n# b\nType=simple\n",
		"[Unit]\n# note \\\nA=b\n",
		"[Unit]\r\nA=b\r\n",
		"\uFEFF[Unit]\nA=b",
		"[Unit]\nA=\u00a0b\n",
		"[Service]\nExecStart=a\\\\\nB=c\n",
		"[X-Fleet]\nMachineOf=%p@%i.service\nConflicts=\"a b\" c*\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	if paths, err := filepath.Glob(filepath.Join("..", "..", "..", "shared", "fixtures", "units", "*")); err == nil {
		for _, path := range paths {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(string(data))
			}
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Count(text, "\n") + 1
		file, warnings, err := Parse("fuzz@1.service", strings.NewReader(text))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.File != "fuzz@1.service" || se.Line < 1 || se.Line > lines {
				t.Fatalf("error %v points outside the %d-line input", err, lines)
			}
			return
		}
		for _, w := range warnings {
			if w.Line < 1 || w.Line > lines {
				t.Fatalf("warning %v points outside the %d-line input", w, lines)
			}
		}
		for _, opt := range file.Options {
			if pos, ok := file.Position(opt); !ok || pos.Line > lines {
				t.Fatalf("option %v has position %v, %v", opt, pos, ok)
			}
			_ = Unfold(opt.Value)
			_ = file.Values(opt.Section, opt.Name)
		}

		ref, err := goSystemd(text)
		if err != nil {
			t.Fatalf("Parse accepts what go-systemd refuses (%v)", err)
		}
		if !sameOptions(ref, file.Options) {
			t.Fatalf("go-systemd reads %s, Parse reads %s", describeOptions(ref), describeOptions(file.Options))
		}

		written := file.Bytes()
		back, _, err := Parse("fuzz@1.service", strings.NewReader(string(written)))
		if err != nil {
			t.Fatalf("cannot read back %q: %v", written, err)
		}
		if want := groupBySection(file.Options); !sameOptions(want, back.Options) {
			t.Fatalf("read back %s, want %s", describeOptions(back.Options), describeOptions(want))
		}
		if again := back.Bytes(); string(again) != string(written) {
			t.Fatalf("second write %q differs from first %q", again, written)
		}
		if back.Hash() != file.Hash() {
			t.Fatal("hash changed on a round trip")
		}
		if _, _, err := FromOptions("fuzz@1.service", file.Options); err != nil {
			t.Fatalf("FromOptions refuses parsed options: %v", err)
		}

		_, _, _ = file.Fleet()
		if _, err := file.Expand(Context{Hostname: "h", MachineID: machineID, BootID: machineID}); err != nil && !errors.Is(err, ErrSpecifier) {
			t.Fatalf("Expand: unexpected error %v", err)
		}
	})
}

// FuzzExpand checks that Expand never panics and that doubling every %
// protects any text.
func FuzzExpand(f *testing.F) {
	f.Add("%n %N %p %P %i %I %H %l %m %b %%", "web-api", `a\x2db-c`)
	f.Add("100%", "x", "")
	f.Add("%z%", "x", "1")
	f.Fuzz(func(t *testing.T, text, prefix, instance string) {
		name := prefix + ".service"
		if instance != "" {
			name = prefix + "@" + instance + ".service"
		}
		n, err := ParseName(name)
		if err != nil {
			return
		}
		ctx := Context{Name: n, Hostname: "host.example", MachineID: machineID, BootID: machineID}
		out, err := Expand(text, ctx)
		if err != nil && !errors.Is(err, ErrSpecifier) {
			t.Fatalf("Expand(%q): unexpected error %v", text, err)
		}
		if err == nil && !strings.Contains(text, "%") && out != text {
			t.Fatalf("Expand(%q) = %q without any specifier", text, out)
		}
		literal, err := Expand(strings.ReplaceAll(text, "%", "%%"), ctx)
		if err != nil || literal != text {
			t.Fatalf("Expand of %q with %% doubled = %q, %v", text, literal, err)
		}
	})
}

// FuzzParseName checks that ParseName never panics, that names it accepts
// print back unchanged, and that Escape and Unescape are inverses.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"web.service", "web@.service", "web@1.service", `a\x2db@c@d.socket`, "@x.service", "x.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseName(s); err == nil {
			if n.String() != s {
				t.Fatalf("ParseName(%q).String() = %q", s, n.String())
			}
			if again, err := ParseName(n.String()); err != nil || again != n {
				t.Fatalf("ParseName(%q) again = %+v, %v", s, again, err)
			}
			if n.Template || n.IsInstance() {
				if in, err := n.Instantiate("1"); err == nil && in.TemplateName() != n.TemplateName() {
					t.Fatalf("instance %v of %v has template %q", in, n, in.TemplateName())
				}
			}
		} else if !errors.Is(err, ErrInvalidName) {
			t.Fatalf("ParseName(%q) error %v does not wrap ErrInvalidName", s, err)
		}
		escaped := Escape(s)
		for i := 0; i < len(escaped); i++ {
			if !validNameChar(escaped[i]) {
				t.Fatalf("Escape(%q) = %q holds %q", s, escaped, escaped[i])
			}
		}
		if back, err := Unescape(escaped); err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
		_, _ = Unescape(s)
	})
}

// FuzzFromOptions checks that options FromOptions accepts are written and
// read back unchanged.
func FuzzFromOptions(f *testing.F) {
	f.Add("Service", "ExecStart", "/bin/echo \\\n  a", "X-Fleet", "Global", "true")
	f.Add("Service", "A", "b\\", "Unit", "B", " c")
	f.Fuzz(func(t *testing.T, s1, n1, v1, s2, n2, v2 string) {
		options := []*gsunit.UnitOption{{Section: s1, Name: n1, Value: v1}, {Section: s2, Name: n2, Value: v2}}
		file, _, err := FromOptions("fuzz.service", options)
		if err != nil {
			return
		}
		back, _, err := Parse("fuzz.service", strings.NewReader(string(file.Bytes())))
		if err != nil {
			t.Fatalf("accepted options do not read back: %v", err)
		}
		if want := groupBySection(options); !sameOptions(want, back.Options) {
			t.Fatalf("read back %s, want %s", describeOptions(back.Options), describeOptions(want))
		}
	})
}
