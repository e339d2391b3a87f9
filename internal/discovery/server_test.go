package discovery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer runs a Server over a fresh data dir behind httptest.
func startServer(t *testing.T) (*Server, *httptest.Server, string) {
	t.Helper()
	dataDir := t.TempDir()
	srv, err := NewServer(ServerOptions{DataDir: dataDir})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts, dataDir
}

// testMachineID returns a valid machine ID distinct for each i.
func testMachineID(i int) string { return fmt.Sprintf("%032x", 0xa0000+i) }

// testReg returns a valid registration distinct for each i.
func testReg(i int) Registration {
	return Registration{
		Name:       fmt.Sprintf("m%d", i),
		PeerURLs:   []string{fmt.Sprintf("https://10.0.0.%d:2380", i)},
		ClientURLs: []string{fmt.Sprintf("https://10.0.0.%d:2379", i)},
	}
}

func newToken(t *testing.T, ts *httptest.Server, size int) string {
	t.Helper()
	var c Client
	tokenURL, err := c.NewToken(context.Background(), ts.URL, size)
	if err != nil {
		t.Fatalf("NewToken(size %d): %v", size, err)
	}
	return tokenURL
}

// doRaw makes one request and returns the status and body.
func doRaw(t *testing.T, method, rawURL, body string) (int, string) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, reader)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return resp.StatusCode, string(data)
}

func regJSON(t *testing.T, reg Registration) string {
	t.Helper()
	data, err := json.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestFullFlowFiveMachinesSizeThree(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 3)
	if !strings.HasPrefix(tokenURL, ts.URL+"/") || !validToken(strings.TrimPrefix(tokenURL, ts.URL+"/")) {
		t.Fatalf("token URL = %q, want %s/<32 hex digits>", tokenURL, ts.URL)
	}

	var c Client
	roles := make([]string, 5)
	var wg sync.WaitGroup
	for i := range roles {
		wg.Go(func() {
			a, err := c.Register(context.Background(), tokenURL, testMachineID(i), testReg(i))
			if err != nil {
				t.Errorf("Register machine %d: %v", i, err)
				return
			}
			if a.Size != 3 {
				t.Errorf("machine %d: size = %d, want 3", i, a.Size)
			}
			roles[i] = a.Role
		})
	}
	wg.Wait()

	st, err := c.Get(context.Background(), tokenURL)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(st.Members) != 3 || len(st.Clients) != 2 || st.Size != 3 {
		t.Fatalf("state has size %d, %d members, %d clients; want 3, 3, 2", st.Size, len(st.Members), len(st.Clients))
	}
	if !st.Full() {
		t.Errorf("Full() = false with %d of %d members, want true", len(st.Members), st.Size)
	}
	inState := make(map[string]string)
	for _, e := range st.Members {
		inState[e.MachineID] = RoleMember
	}
	for _, e := range st.Clients {
		inState[e.MachineID] = RoleClient
	}
	for i, role := range roles {
		if got := inState[testMachineID(i)]; got != role {
			t.Errorf("machine %d: role in state = %q, Register said %q", i, got, role)
		}
		if want := testReg(i); func() bool {
			for _, e := range append(st.Members, st.Clients...) {
				if e.MachineID == testMachineID(i) {
					return !reflect.DeepEqual(e.Registration, want)
				}
			}
			return true
		}() {
			t.Errorf("machine %d: registration in state differs from %+v", i, want)
		}
	}
	// Each member's peer URLs are in the initial cluster.
	ic := st.InitialCluster()
	for _, m := range st.Members {
		if pair := m.Name + "=" + m.PeerURLs[0]; !strings.Contains(ic, pair) {
			t.Errorf("InitialCluster() = %q, want it to hold %q", ic, pair)
		}
	}
}

func TestManyConcurrentRegistrationsNeverExceedSize(t *testing.T) {
	srv, err := NewServer(ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := srv.newToken(9)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPut, "/"+id+"/"+testMachineID(i), strings.NewReader(regJSON(t, testReg(i))))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				t.Errorf("machine %d: status %d (%s), want 201", i, rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	st, _, err := srv.state(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 9 || len(st.Clients) != 51 {
		t.Errorf("got %d members and %d clients, want 9 and 51", len(st.Members), len(st.Clients))
	}
}

func TestReregistrationIsIdempotent(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 1)
	for i := range 2 {
		body := regJSON(t, testReg(i))
		code, answer := doRaw(t, http.MethodPut, tokenURL+"/"+testMachineID(i), body)
		if code != http.StatusCreated {
			t.Fatalf("first registration of machine %d: status %d (%s), want 201", i, code, answer)
		}
		first := answer
		code, answer = doRaw(t, http.MethodPut, tokenURL+"/"+testMachineID(i), body)
		if code != http.StatusOK {
			t.Fatalf("second registration of machine %d: status %d (%s), want 200", i, code, answer)
		}
		if answer != first {
			t.Errorf("machine %d: second answer %q, want the first %q", i, answer, first)
		}
	}
	// Through the client, once the cluster is full: still the original roles.
	var c Client
	for i, want := range []string{RoleMember, RoleClient} {
		a, err := c.Register(context.Background(), tokenURL, testMachineID(i), testReg(i))
		if err != nil {
			t.Fatalf("Register machine %d again: %v", i, err)
		}
		if a != (Assignment{Role: want, Size: 1}) {
			t.Errorf("Register machine %d again = %+v, want role %s size 1", i, a, want)
		}
	}
}

func TestConflicts(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 3)
	var c Client
	ctx := context.Background()
	if _, err := c.Register(ctx, tokenURL, testMachineID(0), testReg(0)); err != nil {
		t.Fatal(err)
	}

	changed := testReg(0)
	changed.PeerURLs = []string{"https://10.9.9.9:2380"}
	_, err := c.Register(ctx, tokenURL, testMachineID(0), changed)
	if !errors.Is(err, ErrConflict) {
		t.Errorf("re-registration with other URLs: err = %v, want ErrConflict", err)
	} else if !strings.Contains(err.Error(), testMachineID(0)) || !strings.Contains(err.Error(), tokenURL) {
		t.Errorf("error %q, want it to name machine %s and URL %s", err, testMachineID(0), tokenURL)
	}

	nameTaken := testReg(1)
	nameTaken.Name = testReg(0).Name
	_, err = c.Register(ctx, tokenURL, testMachineID(1), nameTaken)
	if !errors.Is(err, ErrConflict) {
		t.Errorf("registration with a taken name: err = %v, want ErrConflict", err)
	} else if !strings.Contains(err.Error(), `"m0"`) {
		t.Errorf("error %q, want it to name %q", err, "m0")
	}
	code, _ := doRaw(t, http.MethodPut, tokenURL+"/"+testMachineID(1), regJSON(t, nameTaken))
	if code != http.StatusConflict {
		t.Errorf("taken name: status %d, want 409", code)
	}

	peerTaken := testReg(2)
	peerTaken.PeerURLs = testReg(0).PeerURLs
	if _, err := c.Register(ctx, tokenURL, testMachineID(2), peerTaken); !errors.Is(err, ErrConflict) {
		t.Errorf("registration with a member's peer URL: err = %v, want ErrConflict", err)
	}
}

func TestInvalidInputs(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 1)
	token := strings.TrimPrefix(tokenURL, ts.URL+"/")
	good := testReg(1)
	withName := func(name string) Registration { r := good; r.Name = name; return r }
	withPeers := func(urls ...string) Registration { r := good; r.PeerURLs = urls; return r }
	withClients := func(urls ...string) Registration { r := good; r.ClientURLs = urls; return r }
	machine := tokenURL + "/" + testMachineID(1)

	tests := []struct {
		name, method, url, body string
		wantInError             string
	}{
		{"size zero", "POST", ts.URL + "/new?size=0", "", "size"},
		{"size ten", "GET", ts.URL + "/new?size=10", "", "size"},
		{"size not a number", "GET", ts.URL + "/new?size=three", "", "size"},
		{"machine ID upper case", "PUT", tokenURL + "/" + strings.ToUpper(testMachineID(1)), regJSON(t, good), "machine ID"},
		{"machine ID short", "PUT", tokenURL + "/abc", regJSON(t, good), "machine ID"},
		{"machine ID on delete", "DELETE", tokenURL + "/xyz", "", "machine ID"},
		{"empty name", "PUT", machine, regJSON(t, withName("")), "name"},
		{"name with space", "PUT", machine, regJSON(t, withName("m 1")), "name"},
		{"name starts with dash", "PUT", machine, regJSON(t, withName("-m1")), "name"},
		{"name too long", "PUT", machine, regJSON(t, withName(strings.Repeat("m", 64))), "name"},
		{"peer URL scheme", "PUT", machine, regJSON(t, withPeers("ftp://10.0.0.1:2380")), "peerURLs[0]"},
		{"peer URL no port", "PUT", machine, regJSON(t, withPeers("https://10.0.0.1")), "peerURLs[0]"},
		{"peer URL path", "PUT", machine, regJSON(t, withPeers("https://10.0.0.1:2380/x")), "peerURLs[0]"},
		{"peer URL comma", "PUT", machine, regJSON(t, withPeers("https://a,b:2380")), "peerURLs[0]"},
		{"peer URL bad port", "PUT", machine, regJSON(t, withPeers("https://10.0.0.1:99999")), "peerURLs[0]"},
		{"second peer URL", "PUT", machine, regJSON(t, withPeers("https://10.0.0.1:2380", "10.0.0.2:2380")), "peerURLs[1]"},
		{"client URL", "PUT", machine, regJSON(t, withClients("https://user@10.0.0.1:2379")), "clientURLs[0]"},
		{"member without peer URL", "PUT", machine, regJSON(t, withPeers()), "peerURLs"},
		{"unknown field", "PUT", machine, `{"name":"m1","peerURLs":["https://10.0.0.1:2380"],"peers":[]}`, "body"},
		{"wrong type", "PUT", machine, `{"name":1}`, "body"},
		{"not JSON", "PUT", machine, `name=m1`, "body"},
		{"empty body", "PUT", machine, ``, "body"},
		{"trailing data", "PUT", machine, regJSON(t, good) + `{}`, "body"},
		{"oversized body", "PUT", machine, `{"name":"` + strings.Repeat("m", maxBodyBytes) + `"}`, "body"},
		{"wait", "GET", tokenURL + "?wait=maybe", "", "wait"},
		{"timeout", "GET", tokenURL + "?wait=true&timeout=soon", "", "timeout"},
		{"negative timeout", "GET", tokenURL + "?wait=true&timeout=-1s", "", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := doRaw(t, tt.method, tt.url, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", code, body)
			}
			var eb errorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if !strings.Contains(eb.Error, tt.wantInError) {
				t.Errorf("error %q, want it to name %q", eb.Error, tt.wantInError)
			}
		})
	}

	// Nothing was registered by any of them.
	code, body := doRaw(t, "GET", ts.URL+"/"+token, "")
	if code != http.StatusOK || !strings.Contains(body, `"members":[]`) {
		t.Errorf("after invalid requests: status %d, body %s; want 200 and no members", code, body)
	}

	// The client reports them as ErrInvalid.
	var c Client
	if _, err := c.NewToken(context.Background(), ts.URL, 12); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "size") {
		t.Errorf("NewToken(size 12): err = %v, want ErrInvalid naming the size", err)
	}
	if _, err := c.Register(context.Background(), tokenURL, testMachineID(1), withPeers("https://x:0")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Register with port 0: err = %v, want ErrInvalid", err)
	}
	if _, err := c.Register(context.Background(), tokenURL, "nope", good); !errors.Is(err, ErrInvalid) {
		t.Errorf("Register with machine ID nope: err = %v, want ErrInvalid", err)
	}
}

func TestClientNeedsNoPeerURL(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 1)
	var c Client
	if _, err := c.Register(context.Background(), tokenURL, testMachineID(0), testReg(0)); err != nil {
		t.Fatal(err)
	}
	a, err := c.Register(context.Background(), tokenURL, testMachineID(1), Registration{Name: "worker"})
	if err != nil {
		t.Fatalf("Register without URLs once full: %v", err)
	}
	if a.Role != RoleClient {
		t.Errorf("role = %q, want %q", a.Role, RoleClient)
	}
}

func TestUnknownAndMethods(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 1)
	unknown := ts.URL + "/" + strings.Repeat("0", 32)
	tests := []struct {
		method, url string
		want        int
	}{
		{"GET", unknown, 404},
		{"GET", ts.URL + "/not-a-token", 404},
		{"GET", ts.URL + "/", 404},
		{"GET", tokenURL + "/a/b", 404},
		{"PUT", unknown + "/" + testMachineID(0), 404},
		{"DELETE", unknown + "/" + testMachineID(0), 404},
		{"DELETE", tokenURL + "/" + testMachineID(0), 404},
		{"DELETE", ts.URL + "/new", 405},
		{"POST", tokenURL, 405},
		{"GET", tokenURL + "/" + testMachineID(0), 405},
	}
	for _, tt := range tests {
		code, body := doRaw(t, tt.method, tt.url, "")
		if code != tt.want {
			t.Errorf("%s %s: status %d (%s), want %d", tt.method, tt.url, code, body, tt.want)
		}
		if !strings.Contains(body, `"error":`) {
			t.Errorf("%s %s: body %q, want a JSON error", tt.method, tt.url, body)
		}
	}
	var c Client
	if _, err := c.Get(context.Background(), unknown); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), unknown) {
		t.Errorf("Get(unknown token): err = %v, want ErrNotFound naming %s", err, unknown)
	}
	if _, err := c.Wait(context.Background(), unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("Wait(unknown token): err = %v, want ErrNotFound", err)
	}
}

func TestDeregisterFreesMemberPlace(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 2)
	var c Client
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Register(ctx, tokenURL, testMachineID(i), testReg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Deregister(ctx, tokenURL, testMachineID(0)); err != nil {
		t.Fatalf("Deregister member: %v", err)
	}
	if err := c.Deregister(ctx, tokenURL, testMachineID(0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Deregister twice: err = %v, want ErrNotFound", err)
	}
	// The client keeps its role; the next new machine takes the place.
	if a, err := c.Register(ctx, tokenURL, testMachineID(2), testReg(2)); err != nil || a.Role != RoleClient {
		t.Errorf("Register client again = %+v, %v; want role client", a, err)
	}
	if a, err := c.Register(ctx, tokenURL, testMachineID(3), testReg(3)); err != nil || a.Role != RoleMember {
		t.Errorf("Register new machine = %+v, %v; want role member", a, err)
	}
	st, err := c.Get(ctx, tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	var gotMembers []string
	for _, m := range st.Members {
		gotMembers = append(gotMembers, m.Name)
	}
	if want := []string{"m1", "m3"}; !reflect.DeepEqual(gotMembers, want) {
		t.Errorf("members = %v, want %v", gotMembers, want)
	}
	// The name of a deregistered machine is free again.
	if _, err := c.Register(ctx, tokenURL, testMachineID(4), Registration{Name: "m0"}); err != nil {
		t.Errorf("Register with the name of a deregistered machine: %v", err)
	}
}

func TestLongPollTimesOutWithCurrentState(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 2)
	start := time.Now()
	code, body := doRaw(t, "GET", tokenURL+"?wait=true&timeout=200ms", "")
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("long poll returned after %v, want at least 200ms", elapsed)
	}
	var st State
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Size != 2 || len(st.Members) != 0 {
		t.Errorf("long poll: status %d, body %s; want 200 with size 2 and no members", code, body)
	}
}

func TestWaitReturnsWhenLastMemberRegisters(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 3)
	var c Client
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 {
		if _, err := c.Register(ctx, tokenURL, testMachineID(i), testReg(i)); err != nil {
			t.Fatal(err)
		}
	}
	registered := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Register(ctx, tokenURL, testMachineID(2), testReg(2)); err != nil {
			t.Errorf("Register last member: %v", err)
		}
		registered <- time.Now()
	}()
	st, err := c.Wait(ctx, tokenURL)
	returned := time.Now()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !st.Full() || len(st.Members) != 3 {
		t.Fatalf("Wait returned %d of %d members, want a full list of 3", len(st.Members), st.Size)
	}
	if want := "m0=https://10.0.0.0:2380,m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380"; st.InitialCluster() != want {
		t.Errorf("InitialCluster() = %q, want %q", st.InitialCluster(), want)
	}
	if at := <-registered; returned.Sub(at) > 5*time.Second {
		t.Errorf("Wait returned %v after the last registration, want promptly", returned.Sub(at))
	}
}

func TestWaitRespectsCancel(t *testing.T) {
	_, ts, _ := startServer(t)
	tokenURL := newToken(t, ts, 3)
	var c Client
	if _, err := c.Register(context.Background(), tokenURL, testMachineID(0), testReg(0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	st, err := c.Wait(ctx, tokenURL)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: err = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Wait returned %v after start, want soon after the cancel at 300ms", elapsed)
	}
	if len(st.Members) != 1 || st.Size != 3 {
		t.Errorf("Wait returned %d of %d members, want the last state seen, 1 of 3", len(st.Members), st.Size)
	}
	if !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("error %q, want it to say 1 of 3 members registered", err)
	}
}

func TestWaitRetriesTransientErrors(t *testing.T) {
	srv, err := NewServer(ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failures := 2
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := r.Method == http.MethodGet && failures > 0
		if fail {
			failures--
		}
		mu.Unlock()
		if fail {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	tokenURL := newToken(t, ts, 1)
	var c Client
	if _, err := c.Register(context.Background(), tokenURL, testMachineID(0), testReg(0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.Wait(ctx, tokenURL)
	if err != nil || !st.Full() {
		t.Fatalf("Wait through two 503s = %d members, %v; want a full list", len(st.Members), err)
	}
	if failures != 0 {
		t.Errorf("server still had %d failures to give, want Wait to have gone through both", failures)
	}
}

func TestWaitRetriesConnectionRefused(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	tokenURL := ts.URL + "/" + strings.Repeat("ab", 16)
	ts.Close() // Nothing listens there now.
	var c Client
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := c.Wait(ctx, tokenURL)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a closed port: err = %v, want it to retry until the deadline", err)
	}
	if !strings.Contains(err.Error(), "last error") {
		t.Errorf("error %q, want it to carry the last connection error", err)
	}
}

func TestWaitKeepsPollsUnderClientTimeout(t *testing.T) {
	srv, err := NewServer(ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const clientTimeout = 1500 * time.Millisecond
	var mu sync.Mutex
	var polls []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") == "true" {
			mu.Lock()
			polls = append(polls, r.URL.Query().Get("timeout"))
			mu.Unlock()
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	tokenURL := newToken(t, ts, 2)
	c := Client{HTTPClient: &http.Client{Timeout: clientTimeout}}
	if _, err := c.Register(context.Background(), tokenURL, testMachineID(0), testReg(0)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(2 * time.Second)
		if _, err := c.Register(context.Background(), tokenURL, testMachineID(1), testReg(1)); err != nil {
			t.Errorf("Register: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if st, err := c.Wait(ctx, tokenURL); err != nil || !st.Full() {
		t.Fatalf("Wait with a %v HTTP client timeout = %d members, %v; want a full list", clientTimeout, len(st.Members), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(polls) == 0 {
		t.Fatalf("Wait made no long poll, want at least one")
	}
	for _, v := range polls {
		if d, err := time.ParseDuration(v); err != nil || d >= clientTimeout {
			t.Errorf("long poll timeout = %q, want a duration under the client's %v", v, clientTimeout)
		}
	}
}

func TestRestartKeepsState(t *testing.T) {
	_, ts, dataDir := startServer(t)
	tokenURL := newToken(t, ts, 3)
	emptyURL := newToken(t, ts, 5)
	var c Client
	ctx := context.Background()
	roles := make(map[int]string)
	for i := range 4 {
		a, err := c.Register(ctx, tokenURL, testMachineID(i), testReg(i))
		if err != nil {
			t.Fatal(err)
		}
		roles[i] = a.Role
	}
	if err := c.Deregister(ctx, tokenURL, testMachineID(1)); err != nil {
		t.Fatal(err)
	}
	before, err := c.Get(ctx, tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	ts.Close()

	restarted, err := NewServer(ServerOptions{DataDir: dataDir})
	if err != nil {
		t.Fatalf("NewServer over the same data dir: %v", err)
	}
	ts2 := httptest.NewServer(restarted)
	defer ts2.Close()
	newURL := func(old string) string { return ts2.URL + strings.TrimPrefix(old, ts.URL) }

	after, err := c.Get(ctx, newURL(tokenURL))
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("state after restart = %+v, want %+v", after, before)
	}
	for _, i := range []int{0, 2, 3} {
		a, err := c.Register(ctx, newURL(tokenURL), testMachineID(i), testReg(i))
		if err != nil || a.Role != roles[i] {
			t.Errorf("Register machine %d after restart = %+v, %v; want role %s", i, a, err, roles[i])
		}
	}
	empty, err := c.Get(ctx, newURL(emptyURL))
	if err != nil || empty.Size != 5 || len(empty.Members)+len(empty.Clients) != 0 {
		t.Errorf("empty token after restart = %+v, %v; want size 5 and nothing registered", empty, err)
	}
}

func TestPersistFailureChangesNothing(t *testing.T) {
	srv, ts, dataDir := startServer(t)
	tokenURL := newToken(t, ts, 3)
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	code, body := doRaw(t, http.MethodPut, tokenURL+"/"+testMachineID(0), regJSON(t, testReg(0)))
	if code != http.StatusInternalServerError {
		t.Fatalf("register with the data dir gone: status %d (%s), want 500", code, body)
	}
	st, _, err := srv.state(strings.TrimPrefix(tokenURL, ts.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 0 {
		t.Errorf("after a failed write: %d members in memory, want 0", len(st.Members))
	}
}

func TestCorruptTokenFileIsAnErrorNamingIt(t *testing.T) {
	token := strings.Repeat("cd", 16)
	valid := `{"version":1,"size":1,"members":[{"machineID":"` + testMachineID(0) +
		`","name":"m0","peerURLs":["https://10.0.0.1:2380"],"clientURLs":[]}],"clients":[]}`
	tests := map[string]string{
		"not JSON":            `{"version":1,`,
		"size out of range":   `{"version":1,"size":12,"members":[],"clients":[]}`,
		"unknown version":     `{"version":7,"size":3}`,
		"bad machine ID":      strings.Replace(valid, testMachineID(0), "XYZ", 1),
		"member without peer": strings.Replace(valid, `"https://10.0.0.1:2380"`, ``, 1),
		"more members than size": `{"version":1,"size":1,"members":[` +
			`{"machineID":"` + testMachineID(0) + `","name":"m0","peerURLs":["https://10.0.0.1:2380"]},` +
			`{"machineID":"` + testMachineID(1) + `","name":"m1","peerURLs":["https://10.0.0.2:2380"]}]}`,
		"same machine twice": `{"version":1,"size":2,"members":[` +
			`{"machineID":"` + testMachineID(0) + `","name":"m0","peerURLs":["https://10.0.0.1:2380"]},` +
			`{"machineID":"` + testMachineID(0) + `","name":"m1","peerURLs":["https://10.0.0.2:2380"]}]}`,
	}
	// The valid one loads.
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, token+".json"), []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(ServerOptions{DataDir: dataDir}); err != nil {
		t.Fatalf("NewServer over a valid token file: %v", err)
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			path := filepath.Join(dataDir, token+".json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			// Files that are not token files are left alone.
			if err := os.WriteFile(filepath.Join(dataDir, "notes.json"), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewServer(ServerOptions{DataDir: dataDir})
			if err == nil {
				t.Fatalf("NewServer over %s succeeded, want an error", content)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q, want it to name %s", err, path)
			}
		})
	}
}

func TestRegistrationLimit(t *testing.T) {
	dataDir := t.TempDir()
	token := strings.Repeat("ef", 16)
	f := tokenFile{Version: 1, Size: 1, Members: []Entry{}}
	for i := range maxRegistrations {
		reg := testReg(i)
		if i > 0 {
			reg.PeerURLs = nil
		}
		e := Entry{MachineID: testMachineID(i), Registration: reg}
		if i == 0 {
			f.Members = append(f.Members, e)
		} else {
			f.Clients = append(f.Clients, e)
		}
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, token+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var c Client
	_, err = c.Register(context.Background(), ts.URL+"/"+token, testMachineID(maxRegistrations), testReg(maxRegistrations))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "1000") {
		t.Errorf("registration %d: err = %v, want ErrConflict naming the limit", maxRegistrations+1, err)
	}
}

func TestTokenURLBase(t *testing.T) {
	srv, err := NewServer(ServerOptions{DataDir: t.TempDir(), PublicURL: "https://discovery.example/base/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(method, "http://10.0.0.1:7001/new", nil))
		body := rec.Body.String()
		if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("%s /new: status %d, type %q; want 201 text/plain", method, rec.Code, rec.Header().Get("Content-Type"))
		}
		token, ok := strings.CutPrefix(body, "https://discovery.example/base/")
		if !ok || !strings.HasSuffix(token, "\n") || !validToken(strings.TrimSuffix(token, "\n")) {
			t.Errorf("%s /new = %q, want https://discovery.example/base/<token>\\n", method, body)
		}
		st, _, err := srv.state(strings.TrimSuffix(token, "\n"))
		if err != nil || st.Size != defaultSize {
			t.Errorf("token from %s /new without size: size %d, %v; want %d", method, st.Size, err, defaultSize)
		}
	}

	srv, err = NewServer(ServerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://10.0.0.1:7001/new?size=5", nil))
	if body := rec.Body.String(); !strings.HasPrefix(body, "http://10.0.0.1:7001/") {
		t.Errorf("/new without a public URL = %q, want a URL on the request's host http://10.0.0.1:7001", body)
	}

	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://disco.example:8443/new", nil)
	req.TLS = &tls.ConnectionState{}
	srv.ServeHTTP(rec, req)
	if body := rec.Body.String(); !strings.HasPrefix(body, "https://disco.example:8443/") {
		t.Errorf("/new over TLS without a public URL = %q, want an https URL on the request's host", body)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodGet, "/new", nil)
	req.Host = ""
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Host") {
		t.Errorf("/new without Host or public URL: status %d (%s), want 400 naming the Host", rec.Code, rec.Body)
	}

	if _, err := NewServer(ServerOptions{DataDir: t.TempDir(), PublicURL: "discovery.example"}); err == nil {
		t.Errorf("NewServer with public URL %q succeeded, want an error", "discovery.example")
	}
	if _, err := NewServer(ServerOptions{}); err == nil {
		t.Errorf("NewServer without a data dir succeeded, want an error")
	}
}
