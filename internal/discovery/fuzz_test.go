package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzToken is a token of size 2 that exists in every fuzzing server, so
// that seeds and mutations reach registration.
const fuzzToken = "0123456789abcdef0123456789abcdef"

// FuzzServeHTTP feeds arbitrary methods, paths and bodies to the handler.
// It must never panic, must answer only with documented statuses, must
// answer errors as JSON naming a reason, and must never hand out more member
// places than a token's size.
func FuzzServeHTTP(f *testing.F) {
	machine := "/" + fuzzToken + "/" + testMachineID(1)
	seeds := []struct{ method, path, body string }{
		{"GET", "/new?size=3", ""},
		{"POST", "/new?size=9", ""},
		{"POST", "/new?size=0", ""},
		{"GET", "/" + fuzzToken, ""},
		{"GET", "/" + fuzzToken + "?wait=true&timeout=10ms", ""},
		{"GET", "/" + fuzzToken + "?wait=1&timeout=-3s", ""},
		{"PUT", machine, `{"name":"m1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]}`},
		{"PUT", machine, `{"name":"m1","peerURLs":["http://[fd00::1]:2380"],"clientURLs":[]}`},
		{"PUT", machine, `{"name":"m1","peerURLs":null}`},
		{"PUT", machine, `{"name":"m1","peerURLs":["https://10.0.0.1:2380"]}{}`},
		{"PUT", machine, `{"name":"m1","extra":true}`},
		{"PUT", machine, `[]`},
		{"PUT", "/" + fuzzToken + "/" + testMachineID(2), `{"name":"m2","peerURLs":["https://a.example:2380","https://b:1"]}`},
		{"DELETE", machine, ""},
		{"DELETE", "/" + fuzzToken + "/XYZ", ""},
		{"PATCH", "/" + fuzzToken, ""},
		{"GET", "/", ""},
		{"GET", "/" + fuzzToken + "/a/b", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, []byte(s.body))
	}

	dataDir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, fuzzToken+".json"),
		[]byte(`{"version":1,"size":2,"members":[],"clients":[]}`), 0o600); err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{DataDir: dataDir})
	if err != nil {
		f.Fatal(err)
	}
	documented := map[int]bool{200: true, 201: true, 204: true, 400: true, 404: true, 405: true, 409: true}

	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://discovery.test"+path, strings.NewReader(string(body)))
		if err != nil {
			return // Not a request a server could receive.
		}
		// Bound long polls; the handler answers with the current state
		// when the request's context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req.WithContext(ctx))

		if !documented[rec.Code] {
			t.Fatalf("%s %q: status %d, want one of the documented statuses; body %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%s %q: status %d with body %q, want a JSON error with a message", method, path, rec.Code, rec.Body)
			}
		}

		st, _, err := srv.state(fuzzToken)
		if err != nil {
			t.Fatalf("fuzz token vanished: %v", err)
		}
		if len(st.Members) > st.Size {
			t.Fatalf("after %s %q: %d members for size %d", method, path, len(st.Members), st.Size)
		}
		names := make(map[string]bool)
		for _, e := range append(st.Members, st.Clients...) {
			if names[e.Name] {
				t.Fatalf("after %s %q: name %q registered twice", method, path, e.Name)
			}
			names[e.Name] = true
		}
	})
}

// FuzzRegistrationBody feeds arbitrary bodies to a registration. A body is
// refused with 400, or stored; a stored registration is valid, reads back as
// sent, and registering it again is idempotent.
func FuzzRegistrationBody(f *testing.F) {
	for _, body := range []string{
		`{"name":"m1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]}`,
		`{"name":"a.b-c_d","peerURLs":["http://[fd00::1]:2380","http://node.example.:7"],"clientURLs":null}`,
		`{"name":"m1","peerURLs":["https://10.0.0.1:2380/"]}`,
		`{"name":"m1","peerURLs":["https://u@10.0.0.1:2380"]}`,
		`{"name":"m1","peerURLs":[]}`,
		`{"Name":"m1","PEERURLS":["https://h:1"]}`,
		`{"name":"m1","peerURLs":["https://h:1"]} `,
		`{"name":"m1","peerURLs":["https://h:1"]}x`,
		`{"name":"\u006d1","peerURLs":["https://h:1"]}`,
		`{"name":"m1","peerURLs":"https://h:1"}`,
		`null`,
		``,
	} {
		f.Add([]byte(body))
	}
	dataDir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, fuzzToken+".json"),
		[]byte(`{"version":1,"size":1,"members":[],"clients":[]}`), 0o600); err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{DataDir: dataDir})
	if err != nil {
		f.Fatal(err)
	}
	machineID := testMachineID(7)
	target := "/" + fuzzToken + "/" + machineID

	f.Fuzz(func(t *testing.T, body []byte) {
		put := func() *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, target, strings.NewReader(string(body))))
			return rec
		}
		rec := put()
		switch rec.Code {
		case http.StatusBadRequest:
			return
		case http.StatusCreated:
		default:
			t.Fatalf("PUT %q: status %d (%s), want 201 or 400", body, rec.Code, rec.Body)
		}
		defer func() {
			if err := srv.deregister(fuzzToken, machineID); err != nil {
				t.Fatalf("deregister after %q: %v", body, err)
			}
		}()

		st, _, err := srv.state(fuzzToken)
		if err != nil || len(st.Members) != 1 {
			t.Fatalf("after PUT %q: state %+v, %v; want one member", body, st, err)
		}
		stored := st.Members[0].Registration
		if err := checkRegistration(stored); err != nil || len(stored.PeerURLs) == 0 {
			t.Fatalf("PUT %q stored an invalid member registration %+v: %v", body, stored, err)
		}
		var sent Registration
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("PUT %q was stored but does not decode: %v", body, err)
		}
		if !sameRegistration(sent, stored) {
			t.Fatalf("PUT %q stored %+v, want %+v", body, stored, sent)
		}
		if again := put(); again.Code != http.StatusOK {
			t.Fatalf("PUT %q again: status %d (%s), want 200", body, again.Code, again.Body)
		}
	})
}
