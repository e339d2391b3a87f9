package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"atoll.dev/atoll/internal/store/storetest"
	"atoll.dev/atoll/internal/testutil"
)

// storeEndpoint starts one real member on loopback.
func storeEndpoint(t *testing.T) string {
	t.Helper()
	opts := storetest.ClusterOptions(t, 1)[0]
	m := storetest.Start(t, opts)
	storetest.WaitReady(t, m)
	u := opts.ClientURL()
	return u.String()
}

func TestKVVerbs(t *testing.T) {
	ep := storeEndpoint(t)
	kv := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, append([]string{"kv", "--endpoints", ep}, args...)...)
		if code != 0 {
			t.Fatalf("atoll kv %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	if got := kv("put", "/app/a", "1"); got != "OK\n" {
		t.Errorf("put printed %q, want OK", got)
	}
	kv("put", "/app/b", "2")
	if got := kv("get", "/app/a"); got != "1\n" {
		t.Errorf("get = %q, want %q", got, "1\n")
	}
	if got := kv("get", "/app/", "--prefix"); got != "/app/a\n1\n/app/b\n2\n" {
		t.Errorf("get --prefix = %q, want keys and values in order", got)
	}
	var listed []kvOut
	if err := json.Unmarshal([]byte(kv("get", "/app/", "--prefix", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[1].Key != "/app/b" || listed[1].Value != "2" || listed[1].Version != 1 {
		t.Errorf("get -o json = %+v, want two keys with /app/b=2 at version 1", listed)
	}
	if got := kv("members"); !strings.HasPrefix(got, "ID") || !strings.Contains(got, "m1") {
		t.Errorf("members = %q, want a table listing m1", got)
	}
	if got := kv("health"); !strings.Contains(got, ep) || !strings.Contains(got, "true") {
		t.Errorf("health = %q, want %s healthy", got, ep)
	}
	if got := kv("del", "/app/", "--prefix"); got != "2\n" {
		t.Errorf("del --prefix printed %q, want the count 2", got)
	}
	if got := kv("get", "/app/", "--prefix"); got != "" {
		t.Errorf("get after del = %q, want nothing", got)
	}
}

func TestKVWatchPrintsChanges(t *testing.T) {
	ep := storeEndpoint(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out testutil.Buffer
	done := make(chan int)
	go func() {
		done <- MainContext(ctx, []string{"atoll", "kv", "--endpoints", ep, "watch", "/w/", "--prefix"}, &out, &out)
	}()
	deadline := time.Now().Add(20 * time.Second)
	want := "PUT\n/w/x\nhello\n"
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %q, want it to contain %q", out.String(), want)
		}
		// Put until the watch, which starts asynchronously, sees one.
		run(t, "kv", "--endpoints", ep, "put", "/w/x", "hello")
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch ended with exit code %d: %s", code, out.String())
	}
}

func TestKVHealthFailsOnADeadEndpoint(t *testing.T) {
	ep := storeEndpoint(t)
	code, stdout, stderr := run(t, "kv", "--endpoints", ep+",http://127.0.0.1:1", "--dial-timeout", "500ms", "health")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("health with a dead endpoint: exit %d, stdout %q, stderr %q; want 1 naming the dead endpoint", code, stdout, stderr)
	}
}
