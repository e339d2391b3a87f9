package builtin

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommandLines(t *testing.T) {
	tests := []struct {
		in   string
		want []Command
		warn bool
	}{
		{in: "/bin/echo hello", want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "hello"}}}},
		{in: `/bin/echo "a b" 'c d' e\s`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "a b", "c d", "e "}}}},
		// "\ " is no C escape: kept as written, the space in the word.
		{in: `/bin/echo e\ f`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", `e\ f`}}}, warn: true},
		{in: `/bin/echo \`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", `\`}}}, warn: true},
		{in: `-`, want: nil, warn: true},
		{in: `/bin/echo a"b c"d`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "ab cd"}}}},
		{in: `/bin/echo "\x41\101\u00e9\n\s" '\t'`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "AAé\n ", "\t"}}}},
		{in: `-/bin/false`, want: []Command{{Path: "/bin/false", Argv: []string{"/bin/false"}, IgnoreFailure: true}}},
		{in: `@/bin/sh mysh -c true`, want: []Command{{Path: "/bin/sh", Argv: []string{"mysh", "-c", "true"}}}},
		{in: `-@+:/bin/sh sh`, want: []Command{{Path: "/bin/sh", Argv: []string{"sh"}, IgnoreFailure: true, Privileged: true, NoEnvExpand: true}}},
		{in: `!/bin/id`, want: []Command{{Path: "/bin/id", Argv: []string{"/bin/id"}, Privileged: true}}},
		{in: `!!/bin/id`, want: []Command{{Path: "/bin/id", Argv: []string{"/bin/id"}}}},
		{in: `sleep 1`, want: []Command{{Path: "sleep", Argv: []string{"sleep", "1"}}}},
		{in: `/bin//echo/../echo`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin//echo/../echo"}}}},
		{in: `/bin/echo a ; /bin/echo b`, want: []Command{
			{Path: "/bin/echo", Argv: []string{"/bin/echo", "a"}},
			{Path: "/bin/echo", Argv: []string{"/bin/echo", "b"}},
		}},
		{in: `/bin/echo a \; b ";" c;`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "a", ";", "b", ";", "c;"}}}},
		{in: `/bin/echo \d`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", `\d`}}}, warn: true},
		{in: `/bin/echo $FOO ${BAR}`, want: []Command{{Path: "/bin/echo", Argv: []string{"/bin/echo", "$FOO", "${BAR}"}}}},
		{in: `-/bin/echo "unbalanced`, want: nil, warn: true},
		{in: ``, want: nil},
	}
	for _, tt := range tests {
		var warnings []string
		got, err := ParseCommandLines(tt.in, func(m string) { warnings = append(warnings, m) })
		if err != nil {
			t.Errorf("ParseCommandLines(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseCommandLines(%q) (-want +got):\n%s", tt.in, diff)
		}
		if (len(warnings) > 0) != tt.warn {
			t.Errorf("ParseCommandLines(%q) warned %q, want a warning: %v", tt.in, warnings, tt.warn)
		}
	}
	for _, bad := range []string{`/bin/echo "unbalanced`, `/bin/echo 'x`, `@/bin/sh`, `bin/sh`, `/bin/`, `"/bin/e'cho"`, `/bin/echo "\`} {
		if got, err := ParseCommandLines(bad, nil); err == nil {
			t.Errorf("ParseCommandLines(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestCommandExpand(t *testing.T) {
	env := []string{"A=one two", "B='x y' z", "C=", "D=${A}", "A=1 2 3"}
	tests := []struct {
		argv []string
		want []string
	}{
		{[]string{"echo", "$A"}, []string{"echo", "1", "2", "3"}},
		{[]string{"echo", "${A}"}, []string{"echo", "1 2 3"}},
		{[]string{"echo", "x${A}y"}, []string{"echo", "x1 2 3y"}},
		{[]string{"echo", "$B"}, []string{"echo", "x y", "z"}},
		{[]string{"echo", "$C", "end"}, []string{"echo", "end"}},
		{[]string{"echo", "$UNSET", "${UNSET}"}, []string{"echo", ""}},
		{[]string{"echo", "$$A", "a$$b", "x$A"}, []string{"echo", "$A", "a$b", "x$A"}},
		{[]string{"echo", "${A:-d}", "${A", "$"}, []string{"echo", "${A:-d}", "${A"}},
		{[]string{"echo", "${D}"}, []string{"echo", "${A}"}}, // values are not expanded again
	}
	for _, tt := range tests {
		got := Command{Argv: tt.argv}.Expand(env)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
	if got := (Command{Argv: []string{"$A"}, NoEnvExpand: true}).Expand(env); !slices.Equal(got, []string{"$A"}) {
		t.Errorf("Expand with ':' = %q, want [$A]", got)
	}
}

func TestCommandString(t *testing.T) {
	for _, line := range []string{`/bin/echo hello`, `-@/bin/sh "my sh" -c "echo \"hi\""`, `+/bin/echo \; "a\nb"`} {
		cmds, err := ParseCommandLines(line, nil)
		if err != nil || len(cmds) != 1 {
			t.Fatalf("ParseCommandLines(%q) = %v, %v", line, cmds, err)
		}
		back, err := ParseCommandLines(cmds[0].String(), nil)
		if err != nil || len(back) != 1 {
			t.Fatalf("ParseCommandLines(%q) = %v, %v", cmds[0].String(), back, err)
		}
		if diff := cmp.Diff(cmds[0], back[0]); diff != "" {
			t.Errorf("%q written as %q reads back differently (-want +got):\n%s", line, cmds[0].String(), diff)
		}
	}
}

// FuzzSplitWords checks the splitter on any input: it never panics, and
// words it returns, quoted again, split back to the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`/bin/echo "a b" 'c' \x41`, `a"b c"d`, `\`, `"`, `-@/bin/sh x ; /bin/true \;`, "\\u00e9 \\U0001F600", `$A ${B}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s, unquote|cunescape)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			if strings.ContainsRune(w, 0) {
				return // a NUL never comes out of an escape; only raw input has it
			}
			quoted = append(quoted, quoteWord(w))
		}
		back, err := splitWords(strings.Join(quoted, " "), unquote|cunescape)
		if err != nil {
			t.Fatalf("split %q: %q; quoted %q does not split: %v", s, words, quoted, err)
		}
		if !slices.Equal(back, words) {
			t.Fatalf("split %q: %q; quoted %q splits to %q", s, words, quoted, back)
		}
		// The command-line parser takes the same input without panicking.
		ParseCommandLines(s, func(string) {})
	})
}
