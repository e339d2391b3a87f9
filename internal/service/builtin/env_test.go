package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseEnvironment(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		warn bool
	}{
		{`A=1`, []string{"A=1"}, false},
		{`A=1 B=2`, []string{"A=1", "B=2"}, false},
		{`"A=one two" 'B=x' C="q r"`, []string{"A=one two", "B=x", "C=q r"}, false},
		{`A=\x41\n`, []string{"A=A\n"}, false},
		{`A=1 1B=2 =3 C`, []string{"A=1"}, true},
		{`A="unbalanced`, nil, true},
		{`A=\q`, nil, true}, // an unknown escape ignores the line, unlike in command lines
	}
	for _, tt := range tests {
		var warnings []string
		got := parseEnvironment(tt.in, func(m string) { warnings = append(warnings, m) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("parseEnvironment(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if (len(warnings) > 0) != tt.warn {
			t.Errorf("parseEnvironment(%q) warned %q, want a warning: %v", tt.in, warnings, tt.warn)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	data := `# a comment
; another
A=1
  B = two words   
C='single $quoted \n'
D="double \"quoted\" \$x \n \\"
E=continued \
line
F="multi
line"
G=
H=a\ b\\c
export X=1
1BAD=x
NOEQUALS
I=last`
	var warnings []string
	got := parseEnvFile(data, func(m string) { warnings = append(warnings, m) })
	want := []string{
		"A=1",
		"B=two words",
		`C=single $quoted \n`,
		`D=double "quoted" $x \n \`,
		"E=continued line",
		"F=multi\nline",
		"G=",
		`H=a b\c`,
		"I=last",
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseEnvFile:\n got %q\nwant %q", got, want)
	}
	if len(warnings) != 3 { // export X, 1BAD, NOEQUALS
		t.Errorf("parseEnvFile warned %q, want 3 warnings", warnings)
	}
}

func TestReadEnvFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.env"), []byte("A=1\nB=1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.env"), []byte("B=2\n"), 0o644)
	got, err := readEnvFiles([]EnvFile{
		{Path: filepath.Join(dir, "a.env")},
		{Path: filepath.Join(dir, "missing"), Optional: true},
		{Path: filepath.Join(dir, "b*.env")},
	}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=1", "B=2"}; !slices.Equal(got, want) {
		t.Errorf("readEnvFiles = %q, want %q", got, want)
	}
	if _, err := readEnvFiles([]EnvFile{{Path: filepath.Join(dir, "missing")}}, func(string) {}); err == nil {
		t.Error("readEnvFiles of a missing file that is not optional: no error")
	}
}
