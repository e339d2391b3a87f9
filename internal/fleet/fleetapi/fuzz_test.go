package fleetapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/store/storetest"
)

// fuzzServer is a server over a real etcd for a fuzz target; each fuzz
// worker process starts its own.
func fuzzServer(f *testing.F) (*Server, *registry.Registry) {
	opts := storetest.ClusterOptions(f, 1)[0]
	m := storetest.Start(f, opts)
	storetest.WaitReady(f, m)
	reg := registry.New(m.Client(), "/fuzz/")
	srv := NewServer(Options{Registry: func(context.Context) (*registry.Registry, error) { return reg, nil }})
	return srv, reg
}

func serve(srv *Server, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// checkErrorBody checks that a refusal is fleet's error shape, with its
// code and (but for a 404) a message.
func checkErrorBody(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	var e schema.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d with a body that is not JSON: %v: %q", rec.Code, err, rec.Body)
	}
	// fleet's 404 for a path it does not serve says nothing more.
	if e.Error.Code != rec.Code || e.Error.Message == "" && rec.Code != http.StatusNotFound {
		t.Fatalf("%d with error body %q: want its code and a message", rec.Code, rec.Body)
	}
}

// FuzzPutUnit sends PUT /fleet/v1/units/{name} bodies. Whatever comes
// in, the answer is never a 5xx, every refusal is fleet's error shape,
// and a unit created is read back with exactly the options sent: unit
// files survive the registry's text form unchanged.
func FuzzPutUnit(f *testing.F) {
	seeds := []struct{ name, body string }{
		{"web.service", `{"name":"web.service","desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"}]}`},
		{"web.service", `{"desiredState":"loaded"}`},
		{"a@.service", `{"options":[{"section":"Unit","name":"Description","value":"%n"}],"desiredState":"launched"}`},
		{"a@1.service", `{"options":[{"section":"X-Fleet","name":"Global","value":"true"},{"section":"X-Fleet","name":"MachineID","value":"abc"}]}`},
		{"x.service", `{"options":[{"section":"Service","name":"ExecStart","value":"a \\\n b"}]}`},
		{"x.service", `{"options":[{"section":"Service","name":"Environment","value":"A=\"b c\""},{"section":"Service","name":"X","value":" lead"}]}`},
		{"x.service", `{"options":[{"section":"Service]","name":"A","value":"b"}]}`},
		{"x.service", `{"options":[null]}`},
		{"x.mount", `{"options":[{"section":"Mount","name":"What","value":"#not a comment"}]}`},
		{"x.service", `{"options":[{"section":"Service","name":"A","value":"b\\"}]}`},
		{"x.service", `{"name":"y.service"}`},
		{"x/y.service", `{}`},
		{"x.service", `{"options":[{"section":"Service","name":"A","value":"\u0000"}]}`},
	}
	for _, s := range seeds {
		f.Add(s.name, s.body)
	}
	srv, reg := fuzzServer(f)
	f.Fuzz(func(t *testing.T, name, body string) {
		target := "/fleet/v1/units/" + url.PathEscape(name)
		if _, err := url.ParseRequestURI(target); err != nil {
			t.Skip()
		}
		rec := serve(srv, http.MethodPut, target, body)
		switch rec.Code {
		case http.StatusCreated, http.StatusNoContent:
			if rec.Body.Len() != 0 {
				t.Fatalf("%d with a body: %q", rec.Code, rec.Body)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
			checkErrorBody(t, rec)
			return
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			// ServeMux sends unclean paths ("units/.") to their clean
			// form, as it did for fleet.
			return
		default:
			t.Fatalf("PUT %s %q: %d %s", target, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusNoContent {
			return
		}
		var sent schema.Unit
		if err := json.Unmarshal([]byte(body), &sent); err != nil {
			t.Fatalf("201 for a body that is not a unit: %v", err)
		}
		got := serve(srv, http.MethodGet, target, "")
		if got.Code != http.StatusOK {
			t.Fatalf("GET after 201: %d %s", got.Code, got.Body)
		}
		var back schema.Unit
		if err := json.Unmarshal(got.Body.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sent.Options, back.Options); diff != "" {
			t.Fatalf("options read back differ (-sent +read):\n%s", diff)
		}
		if want := sent.DesiredState; want != "" && back.DesiredState != want {
			t.Fatalf("desired state %q, want %q", back.DesiredState, want)
		}
		if err := reg.Destroy(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzPatchMachines sends PATCH /fleet/v1/machines bodies. The answer is
// 204 or a 400 in fleet's error shape; a 400 changes nothing (every
// operation is checked first); after a 204 the machines' metadata is what
// the operations say, in order.
func FuzzPatchMachines(f *testing.F) {
	seeds := []string{
		`[{"op": "add", "path": "/XXX/metadata/foo", "value": { "value": "bar" }}, {"op": "replace", "path": "/YYY/metadata/ping", "value": { "value": "splat" }}]`,
		`[{"op": "remove", "path": "/XXX/metadata/foo"}, {"op": "remove", "path": "/YYY/metadata/ping"}]`,
		`[{"op": "add", "path": "/XXX/metadata/foo", "value": "plain"}]`,
		`[{"op": "noop", "path": "/XXX/metadata/foo", "value": { "value": "bar" }}]`,
		`[{"op": "add", "path": "/XXX/foo", "value": { "value": "bar" }}]`,
		`[{"op": "add", "path": "/XXX/foo"}]`,
		`[{"op": "add", "path": "/XXX/metadata/a", "value": null}]`,
		`[{"op": "add", "path": "/XXX/metadata/a", "Value": {"Value": "x"}}]`,
		`[] trailing`,
		`null`,
		`[{"op":"add","path":"/XXX/metadata/region","value":"eu"},{"op":"remove","path":"/XXX/metadata/region"}]`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	srv, reg := fuzzServer(f)
	ctx := context.Background()
	for _, id := range []string{"XXX", "YYY"} {
		if err := reg.Register(ctx, 0, registry.Machine{ID: id, Metadata: map[string]string{"region": "us"}}); err != nil {
			f.Fatal(err)
		}
	}
	metadata := func(t *testing.T) map[string]map[string]string {
		snap, err := reg.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for id, m := range snap.Machines {
			out[id] = m.Metadata
		}
		return out
	}
	f.Fuzz(func(t *testing.T, body string) {
		before := metadata(t)
		rec := serve(srv, http.MethodPatch, "/fleet/v1/machines", body)
		switch rec.Code {
		case http.StatusBadRequest:
			checkErrorBody(t, rec)
			if diff := cmp.Diff(before, metadata(t)); diff != "" {
				t.Fatalf("a refused PATCH changed metadata (-before +after):\n%s", diff)
			}
			return
		case http.StatusNoContent:
		default:
			t.Fatalf("PATCH %q: %d %s", body, rec.Code, rec.Body)
		}
		changes, err := parseMetadataPatch([]byte(body))
		if err != nil {
			t.Fatalf("204 for a body parseMetadataPatch refuses: %v", err)
		}
		// What the operations leave on the registered machines: set
		// values, removed keys gone unless the machine registered them.
		want := before
		for _, c := range changes {
			md, ok := want[c.machine]
			if !ok {
				continue
			}
			next := map[string]string{}
			for k, v := range md {
				next[k] = v
			}
			if c.remove {
				delete(next, c.key)
				if c.key == "region" {
					next["region"] = "us"
				}
			} else {
				next[c.key] = c.value
			}
			want[c.machine] = next
		}
		if diff := cmp.Diff(want, metadata(t)); diff != "" {
			t.Fatalf("metadata after %q (-want +got):\n%s", body, diff)
		}
	})
}
