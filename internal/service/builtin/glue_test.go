package builtin

import (
	"context"
	"os"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/journal"
	unitfile "atoll.dev/atoll/internal/unit"
)

func TestUnitParserExpandsForTheInstance(t *testing.T) {
	parse := UnitParser(unitfile.Context{Hostname: "m1.example", MachineID: strings.Repeat("ab", 16)})
	opts, err := parse("web@8080.service", "web@.service", []byte("[Unit]\nDescription=web on %i at %H\n[Service]\nExecStart=/bin/web --port=%i --id=%m\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range opts {
		got = append(got, o.Name+"="+o.Value)
	}
	want := "Description=web on 8080 at m1.example ExecStart=/bin/web --port=8080 --id=" + strings.Repeat("ab", 16)
	if strings.Join(got, " ") != want {
		t.Errorf("options %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := parse("web.service", "web.service.d/10-x.conf", []byte("ExecStart=/bin/true\n")); err == nil || !strings.Contains(err.Error(), "web.service.d/10-x.conf:1") {
		t.Errorf("a directive outside a section: %v, want an error naming web.service.d/10-x.conf:1", err)
	}
}

func TestJournalLogger(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l := JournalLogger(j)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.Capture("web.service", "stdout", r); close(done) }()
	w.WriteString("hello\n")
	w.Close()
	<-done
	l.Append("web.service", "Started web.service.")
	var lines []string
	err = j.Read(context.Background(), "web.service", journal.ReadOptions{}, func(e journal.Entry) error {
		lines = append(lines, e.Stream+" "+e.Line)
		return nil
	})
	if err != nil || strings.Join(lines, "|") != "stdout hello|manager Started web.service." {
		t.Errorf("journal has %q, %v", lines, err)
	}
}
