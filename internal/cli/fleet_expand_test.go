package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFleetExpandBraces(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want []string
	}{
		{"web@{1..3}.service", []string{"web@1.service", "web@2.service", "web@3.service"}},
		{"web@{1..3}", []string{"web@1", "web@2", "web@3"}},
		{"web@{a,b}.service", []string{"web@a.service", "web@b.service"}},
		{"x{a,b}{1..2}", []string{"xa1", "xa2", "xb1", "xb2"}},
		{"{a,{b,c}}d", []string{"ad", "bd", "cd"}},
		{"a{,b}", []string{"a", "ab"}},
		{"w@{3..1}", []string{"w@3", "w@2", "w@1"}},
		{"w@{01..03}", []string{"w@01", "w@02", "w@03"}},
		{"w@{1..10..4}", []string{"w@1", "w@5", "w@9"}},
		{"w@{1..7..-3}", []string{"w@1", "w@4", "w@7"}},
		{"w@{-1..1}", []string{"w@-1", "w@0", "w@1"}},
		{"w@{a..c}", []string{"w@a", "w@b", "w@c"}},
		{"w@{C..A}", []string{"w@C", "w@B", "w@A"}},
		{"dir/web@{1..2}", []string{"dir/web@1", "dir/web@2"}},
		// Not brace expressions: kept as written, as bash keeps them
		// (fleetctl then refuses the name).
		{"foo.{1-3}.service", []string{"foo.{1-3}.service"}},
		{"foo{}", []string{"foo{}"}},
		{"foo{a}", []string{"foo{a}"}},
		{"foo{1..b}", []string{"foo{1..b}"}},
		{"foo{a,b", []string{"foo{a,b"}},
		{"{x}{1,2}", []string{"{x}1", "{x}2"}},
		{"plain.service", []string{"plain.service"}},
	} {
		got, err := expandBraces(tt.arg)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expandBraces(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
}

func TestFleetExpandBracesRefusesHugeExpansions(t *testing.T) {
	for _, arg := range []string{"web@{1..1000000000}", "w{1..200}{1..200}"} {
		_, err := expandBraces(arg)
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("expandBraces(%q): error %v, want a refusal", arg, err)
		}
	}
	_, err := expandUnitArgs([]string{"web@{1..1000000000}"})
	var usage usageError
	if !errors.As(err, &usage) {
		t.Errorf("expandUnitArgs: error %v, want a usage error", err)
	}
}
