package unit

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestDirectivesCoverSystemd252 checks the directive tables against
// testdata/systemd-252-items.txt, the output of
// "/lib/systemd/systemd --dump-configuration-items" from Debian 12's
// systemd 252: every section and directive systemd 252 reads must be known
// (or known as obsolete), so real units written for it get no false
// warnings.
func TestDirectivesCoverSystemd252(t *testing.T) {
	file, err := os.Open("testdata/systemd-252-items.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	section, count := "", 0
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			if msg := sectionWarning("", section); msg != "" {
				t.Errorf("systemd 252 section [%s]: %s", section, msg)
			}
		default:
			directive, _, _ := strings.Cut(line, "=")
			count++
			if msg := directiveWarning(section, directive); strings.HasPrefix(msg, "unknown") {
				t.Errorf("systemd 252 reads %s= in [%s], the tables do not know it", directive, section)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if count < 1000 {
		t.Errorf("read only %d directives from the dump", count)
	}
}

func TestSectionsByType(t *testing.T) {
	for typ, sections := range typeSections {
		if !knownType(typ) {
			t.Errorf("typeSections has unknown type %q", typ)
		}
		for _, s := range sections {
			if _, ok := sectionDirectives[s]; !ok {
				t.Errorf("type %s reads section [%s], which has no directive table", typ, s)
			}
		}
	}
	for _, typ := range unitTypes {
		if _, ok := typeSections[typ]; !ok {
			t.Errorf("unit type %s has no sections", typ)
		}
	}
	if msg := directiveWarning("Unit", "MemoryLimit"); msg != "unknown directive MemoryLimit= in [Unit]" {
		t.Errorf("MemoryLimit= in [Unit]: %q, want it unknown there", msg)
	}
}
