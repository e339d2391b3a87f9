package builtin

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPollerWatchOnce checks that a watch calls its function once per
// arming, and not after it is stopped.
func TestPollerWatchOnce(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fired := make(chan struct{}, 10)
	watch, err := p.newWatch(r, "pipe", func() { fired <- struct{}{} })
	if err == nil {
		err = watch.start()
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	<-fired
	// Still readable, but not armed: a rearm fires at once.
	if err := watch.rearm(); err != nil {
		t.Fatal(err)
	}
	<-fired
	watch.stop()
	if err := watch.rearm(); err == nil {
		t.Error("rearm after stop: got no error, want one")
	}
	w.Write([]byte("y"))
	p.close() // waits for the poller's goroutine
	if n := len(fired); n != 0 {
		t.Errorf("function called %d times after stop, want 0", n)
	}
}

// TestExchangeFile checks that a record is replaced whole and keeps one
// spare beside it, shorter records included.
func TestExchangeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "u.service.json")
	for _, content := range []string{`{"a":"first, and long"}`, `{"b":2}`, `{"c":"third"}`} {
		if err := exchangeFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("record %q, want %q", got, content)
		}
	}
	if got, _ := os.ReadFile(path + ".tmp"); string(got) != `{"b":2}` {
		t.Errorf("spare %q, want the record before last", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d files in the directory, want the record and its spare", len(entries))
	}
}
