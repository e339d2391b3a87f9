package unit

import (
	"errors"
	"strings"
	"testing"

	gsunit "github.com/coreos/go-systemd/v22/unit"
	"github.com/google/go-cmp/cmp"
)

type opt struct {
	Section, Name, Value string
	Line                 int
}

func optionsOf(f *File) []opt {
	var got []opt
	for _, o := range f.Options {
		pos, _ := f.Position(o)
		got = append(got, opt{o.Section, o.Name, o.Value, pos.Line})
	}
	return got
}

// goSystemd parses text with go-systemd's own deserializer, the reference
// Parse must agree with, after the two normalizations Parse makes.
func goSystemd(text string) ([]*gsunit.UnitOption, error) {
	text = strings.TrimPrefix(text, "\uFEFF")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	return gsunit.DeserializeOptions(strings.NewReader(text))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []opt
	}{
		{"empty", "", nil},
		{"only comments", "# a\n; b\n\n", nil},
		{"basic", "[Unit]\nDescription=Foo\n\n[Service]\nExecStart=/bin/true\n", []opt{
			{"Unit", "Description", "Foo", 2},
			{"Service", "ExecStart", "/bin/true", 5},
		}},
		{"white space trimmed", "  [Unit]  \n  Description =  Foo bar  \n", []opt{
			{"Unit", "Description", "Foo bar", 2},
		}},
		{"no final newline", "[Unit]\nDescription=Foo", []opt{{"Unit", "Description", "Foo", 2}}},
		{"empty value", "[Service]\nExecStart=\nExecStart=  \n", []opt{
			{"Service", "ExecStart", "", 2},
			{"Service", "ExecStart", "", 3},
		}},
		{"first = splits", "[Service]\nEnvironment=A=b=c\n", []opt{{"Service", "Environment", "A=b=c", 2}}},
		{"inline # is not a comment", "[Service]\nExecStart=echo # not a comment\n", []opt{
			{"Service", "ExecStart", "echo # not a comment", 2},
		}},
		{"comment before sections", "# header\n;x\n[Unit]\nA=b\n", []opt{{"Unit", "A", "b", 4}}},
		{"continuation keeps lines", "[Service]\nExecStart=/bin/echo \\\n  a \\\n  b\nType=simple\n", []opt{
			{"Service", "ExecStart", "/bin/echo \\\n  a \\\n  b", 2},
			{"Service", "Type", "simple", 5},
		}},
		{"continuation ended by blank line", "[Service]\nExecStart=echo \\\n\nType=simple\n", []opt{
			{"Service", "ExecStart", "echo \\\n", 2},
			{"Service", "Type", "simple", 4},
		}},
		{"continuation at end of file", "[Service]\nExecStart=echo \\\n", []opt{
			{"Service", "ExecStart", "echo \\\n", 2},
		}},
		{"continued comment inside value", "[Service]\nExecStart=a \\\n# b \\\n c\n", []opt{
			{"Service", "ExecStart", "a \\\n# b \\\n c", 2},
		}},
		{"continued line looks like a header", "[Service]\nExecStart=a \\\n[Unit]\n", []opt{
			{"Service", "ExecStart", "a \\\n[Unit]", 2},
		}},
		{"continued comment skips comments", "[Unit]\n#ExecStart=a \\\n#  b\nA=b\n", []opt{{"Unit", "A", "b", 4}}},
		{"continued comment skips blank line", "[Unit]\n# a \\\n\nA=b\n", []opt{{"Unit", "A", "b", 4}}},
		{"byte order mark", "\uFEFF[Unit]\nA=b\n", []opt{{"Unit", "A", "b", 2}}},
		{"CRLF", "[Unit]\r\nA=b\r\n\r\n[Service]\r\nB=c \\\r\n d\r\n", []opt{
			{"Unit", "A", "b", 2},
			{"Service", "B", "c \\\n d", 5},
		}},
		{"repeated section", "[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n", []opt{
			{"Unit", "A", "1", 2}, {"Service", "B", "2", 4}, {"Unit", "C", "3", 6},
		}},
		{"odd section and key names", "[a[b]\nFoo Bar=1\n<<<=x\n", []opt{
			{"a[b", "Foo Bar", "1", 2}, {"a[b", "<<<", "x", 3},
		}},
		{"unicode inside values", "[Unit]\nDescription=Grüße\u00a0aus Köln\n", []opt{
			{"Unit", "Description", "Grüße\u00a0aus Köln", 2},
		}},
		{"longest line", "[Unit]\nA=" + strings.Repeat("x", lineMax-3) + "\n", []opt{
			{"Unit", "A", strings.Repeat("x", lineMax-3), 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, err := Parse("test.service", strings.NewReader(tt.text))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, optionsOf(f)); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			ref, err := goSystemd(tt.text)
			if err != nil {
				t.Fatalf("go-systemd refuses what Parse accepts: %v", err)
			}
			if !sameOptions(ref, f.Options) {
				t.Errorf("go-systemd reads %s, Parse reads %s", describeOptions(ref), describeOptions(f.Options))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string
	}{
		{"directive outside section", "Foo=bar\n[Unit]\n", 1, "outside of any section"},
		{"junk outside section", "# ok\n>>>>\n[Unit]\n", 2, "expected a [Section] header"},
		{"no equals", "[Unit]\n\nnonsense upon stilts\n", 3, `expected Key=Value, got "nonsense upon stilts"`},
		{"no name", "[Unit]\n=foo\n", 2, "missing directive name"},
		{"unterminated header", "[Unit\nA=b\n", 1, "has no closing ]"},
		{"text after header", "[Unit] # c\n", 1, `unexpected " # c" after section header [Unit]`},
		{"empty header", "[]\n", 1, "empty section name"},
		{"long line", "[Unit]\nA=" + strings.Repeat("x", lineMax) + "\n", 2, "LINE_MAX"},
		{"invalid UTF-8", "[Unit]\nA=\xff\n", 2, "invalid UTF-8"},
		{"NUL", "[Unit]\nA=a\x00b\n", 2, "NUL byte"},
		{"control character", "[Unit]\nA=a\x1bb\n", 2, "control character U+001B"},
		{"lone CR", "[Unit]\nA=a\rB=c\n", 2, "carriage return"},
		{"leading no-break space", "[Unit]\n\u00a0A=b\n", 2, "starts with U+00A0"},
		{"trailing no-break space", "[Unit]\nA=b\u00a0\n", 2, "ends with U+00A0"},
		{"no-break space before =", "[Unit]\nA\u00a0=b\n", 2, "ends with U+00A0"},
		{"no-break space after =", "[Unit]\nA=\u00a0b\n", 2, "starts with U+00A0"},
		{"comment swallows directive", "[Unit]\n# note \\\nA=b\n", 2, "fleet's parser would skip line 3"},
		{"comment ends continuation", "[Service]\nExecStart=a \\\n# b\nType=simple\n", 3, "comment inside a continued value"},
		{"escaped backslash at end", "[Service]\nExecStart=a\\\\\nType=simple\n", 2, "escaped backslash"},
		{"continuation at end of file", "[Service]\nExecStart=a \\", 2, "file ends in the middle of a continued value"},
		{"backslash before trailing space", "[Service]\nExecStart=a \\ \nType=simple\n", 2, "value ends with a backslash followed by white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("web.service", strings.NewReader(tt.text))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse error = %v, want a *SyntaxError", err)
			}
			if se.File != "web.service" || se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error %q: got file %q line %d, want web.service line %d with %q", err, se.File, se.Line, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), se.File+":") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	text := `[Unit]
Description=x
Frobnicate=yes

[Service]
ExecStart=/bin/true
MemoryLimit=1G
Foo=bar

[Socket]
ListenStream=80

[Bogus]
A=b

[X-Mine]
Anything=goes

[X-Fleet]
Whatever=1
`
	_, warnings, err := Parse("web.service", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	want := []string{
		"web.service:3: unknown directive Frobnicate= in [Unit]",
		"web.service:7: obsolete directive MemoryLimit= in [Service]: systemd 258 and later ignore it (cgroup v1); use MemoryMax=",
		"web.service:8: unknown directive Foo= in [Service]",
		"web.service:10: section [Socket] does not belong in a .service unit: systemd ignores it and its directives",
		"web.service:13: unknown section [Bogus]: systemd ignores it and its directives",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if w := warnings[2]; w.Section != "Service" || w.Directive != "Foo" || w.Line != 8 {
		t.Errorf("warning fields = %+v, want Section Service, Directive Foo, Line 8", w)
	}

	// A name that is not a unit name leaves the type open: every section
	// systemd knows is fine.
	_, warnings, err = Parse("drop.conf", strings.NewReader("[Socket]\nListenStream=80\n[Service]\nType=simple\n"))
	if err != nil || len(warnings) != 0 {
		t.Errorf("Parse(drop.conf) = %v, %v; want no warnings", warnings, err)
	}
}

func TestRoundTrip(t *testing.T) {
	text := "[Unit]\nDescription=a\n[Service]\nExecStart=echo \\\n  a \\\n# c \\\n  b\nEnvironment=X=1 \\\n\n[Unit]\nAfter=x.service\n[X-Fleet]\nConflicts=a*\n"
	f, _, err := Parse("web.service", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	written := f.Bytes()
	back, _, err := Parse("web.service", strings.NewReader(string(written)))
	if err != nil {
		t.Fatalf("reading back %q: %v", written, err)
	}
	if want := groupBySection(f.Options); !sameOptions(want, back.Options) {
		t.Errorf("read back %s, want %s", describeOptions(back.Options), describeOptions(want))
	}
	if again := back.Bytes(); string(again) != string(written) {
		t.Errorf("second write = %q, first = %q", again, written)
	}
}

func TestValues(t *testing.T) {
	text := `[Unit]
After=a.service
After=
After=b.service
[Service]
ExecStart=/bin/echo \
  one \
# skipped by systemd \
  two
ExecStartPre=/bin/a
ExecStartPre=
ExecStartPre=/bin/b
ExecStartPre=/bin/c
Type=simple
Type=
Environment=A=1 \

[X-Fleet]
Conflicts=x
Conflicts=
Conflicts=y
`
	f, _, err := Parse("web.service", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		section, name string
		want          []string
	}{
		{"Unit", "After", []string{"a.service", "b.service"}},
		{"Service", "ExecStart", []string{"/bin/echo    one    two"}},
		{"Service", "ExecStartPre", []string{"/bin/b", "/bin/c"}},
		{"Service", "Type", nil},
		{"Service", "Environment", []string{"A=1"}},
		{"X-Fleet", "Conflicts", []string{"x", "y"}},
		{"Service", "Missing", nil},
	}
	for _, tt := range tests {
		if got := f.Values(tt.section, tt.name); !cmp.Equal(got, tt.want) {
			t.Errorf("Values(%s, %s) = %q, want %q", tt.section, tt.name, got, tt.want)
		}
	}
	if v, ok := f.Value("Service", "Type"); v != "" || !ok {
		t.Errorf(`Value(Service, Type) = %q, %v; want "", true (reset)`, v, ok)
	}
	if v, ok := f.Value("Service", "ExecStartPre"); v != "/bin/c" || !ok {
		t.Errorf("Value(Service, ExecStartPre) = %q, %v; want /bin/c, true", v, ok)
	}
	if _, ok := f.Value("Install", "WantedBy"); ok {
		t.Error("Value(Install, WantedBy) reports a value the file does not set")
	}
	if got, want := f.Sections(), []string{"Unit", "Service", "X-Fleet"}; !cmp.Equal(got, want) {
		t.Errorf("Sections() = %q, want %q", got, want)
	}
}

func TestUnfold(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"plain", "plain"},
		{"a \\\n  b", "a    b"},
		// fleet's TestDeserializeEscapedMultilines from before go-systemd
		// kept continuations raw expected systemd's joining.
		{"echo \\\n  \"pi\\\n  ng\"", `echo    "pi   ng"`},
		{"\\\necho \"po\\\nng\"", `echo "po ng"`},
		{"a\\\nb\\\nc", "a b c"},
		{"a \\\n", "a"},
		{"a \\\n# c \\\n  b", "a    b"},
		{"a\\\\\n", `a\\`},
		{"a\\\\\\\nb", `a\\ b`},
	}
	for _, tt := range tests {
		if got := Unfold(tt.raw); got != tt.want {
			t.Errorf("Unfold(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestFromOptions(t *testing.T) {
	good := []*gsunit.UnitOption{
		{Section: "Service", Name: "ExecStart", Value: "/bin/sleep 100"},
		{Section: "X-Fleet", Name: "Global", Value: "true"},
		{Section: "Service", Name: "Bogus", Value: "1"},
	}
	f, warnings, err := FromOptions("web.service", good)
	if err != nil {
		t.Fatalf("FromOptions: %v", err)
	}
	if !sameOptions(f.Options, good) {
		t.Errorf("options = %s, want them as given", describeOptions(f.Options))
	}
	if len(warnings) != 1 || warnings[0].String() != "web.service: unknown directive Bogus= in [Service]" {
		t.Errorf("warnings = %v, want one about Bogus= without a line", warnings)
	}

	bad := []struct {
		opt  gsunit.UnitOption
		want string
	}{
		{gsunit.UnitOption{Section: "Service", Name: "A=B", Value: "c"}, "reads back as [Service] A=\"B=c\""},
		{gsunit.UnitOption{Section: "Service", Name: "A", Value: " padded"}, `reads back as [Service] A="padded"`},
		{gsunit.UnitOption{Section: "Ser]vice", Name: "A", Value: "b"}, "unexpected"},
		{gsunit.UnitOption{Section: "Service", Name: "A", Value: "line\nbreak"}, "expected Key=Value"},
		{gsunit.UnitOption{Section: "Service", Name: "", Value: "x"}, "missing directive name"},
		{gsunit.UnitOption{Section: "Service", Name: "A", Value: `ends\`}, `reads back as [Service] A="ends\\\n"`},
	}
	for _, tt := range bad {
		_, _, err := FromOptions("web.service", []*gsunit.UnitOption{&tt.opt})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("FromOptions(%v) error = %v, want one containing %q", tt.opt.String(), err, tt.want)
		}
	}
}
