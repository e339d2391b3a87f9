package fleetapi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/pki"
)

func TestClientUnits(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	ctx := context.Background()
	opts := schemaOptions(parseUnit(t, "web.service", webUnit).Options)

	if err := e.cl.CreateUnit(ctx, &schema.Unit{Name: "web.service", Options: opts, DesiredState: "loaded", CurrentState: "ignored", MachineID: "ignored"}); err != nil {
		t.Fatal(err)
	}
	u, err := e.cl.Unit(ctx, "web.service")
	if err != nil {
		t.Fatal(err)
	}
	if u.DesiredState != "loaded" || u.CurrentState != "inactive" || len(u.Options) != 2 || *u.Options[1] != *opts[1] {
		t.Errorf("unit: %+v, want loaded and inactive with its options", u)
	}
	if err := e.cl.SetUnitTargetState(ctx, "web.service", "launched"); err != nil {
		t.Fatal(err)
	}
	if ru, _ := e.reg.Unit(ctx, "web.service"); ru.DesiredState != registry.Launched {
		t.Errorf("desired state %q, want launched", ru.DesiredState)
	}
	err = e.cl.SetUnitTargetState(ctx, "web.service", "bogus")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != 400 {
		t.Errorf("SetUnitTargetState bogus: %v, want a 400 *Error", err)
	}
	if want := `unit "web.service": fleet API: 400: invalid value "bogus" for desiredState: want inactive, loaded or launched`; err == nil || err.Error() != want {
		t.Errorf("error reads %q, want %q", err, want)
	}
	err = e.cl.CreateUnit(ctx, &schema.Unit{Name: "tmpl@.service", Options: opts, DesiredState: "launched"})
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || !strings.Contains(apiErr.Message, "cannot activate template") {
		t.Errorf("launching a template: %v, want a 400", err)
	}
	units, err := e.cl.Units(ctx)
	if err != nil || len(units) != 1 || units[0].Name != "web.service" {
		t.Errorf("Units: %v, %v; want web.service", units, err)
	}
	if err := e.cl.DestroyUnit(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Unit":        func() error { _, err := e.cl.Unit(ctx, "web.service"); return err }(),
		"DestroyUnit": e.cl.DestroyUnit(ctx, "web.service"),
		"SetState":    e.cl.SetUnitTargetState(ctx, "web.service", "launched"),
	} {
		if name == "SetState" {
			// fleet's answer for a missing unit without options is 409.
			if !errors.As(err, &apiErr) || apiErr.Code != 409 {
				t.Errorf("%s of a destroyed unit: %v, want 409", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a destroyed unit: %v, want ErrNotFound", name, err)
		}
	}
	if units, err := e.cl.Units(ctx); err != nil || len(units) != 0 {
		t.Errorf("Units after destroy: %v, %v; want none", units, err)
	}
}

func TestClientEndpoints(t *testing.T) {
	c := startEtcd(t)
	e := newEnv(t, c, Options{})
	e.register(registry.Machine{ID: "m1", PublicIP: "10.0.0.1"})
	ctx := context.Background()

	// unix:///path, as fleetctl's default unix:///var/run/fleet.sock.
	sock := filepath.Join(t.TempDir(), "fleet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	cl, err := NewClient("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := cl.Machines(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != "m1" || ms[0].PrimaryIP != "10.0.0.1" {
		t.Errorf("Machines over a unix socket: %+v, %v", ms, err)
	}

	// A path prefix is kept, as fleetctl keeps it.
	mux := http.NewServeMux()
	mux.Handle("/prefix/", http.StripPrefix("/prefix", e.srv))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	cl, err = NewClient(ts.URL+"/prefix/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := cl.Machines(ctx); err != nil || len(ms) != 1 {
		t.Errorf("Machines under a path prefix: %+v, %v", ms, err)
	}

	for _, bad := range []string{"ftp://host", "unix://", "http://", "://x", "/var/run/fleet.sock"} {
		if _, err := NewClient(bad, nil); err == nil {
			t.Errorf("NewClient(%q) = nil error, want one", bad)
		}
	}
	// Nobody listening: a transport error, not an *Error.
	cl, _ = NewClient("unix://"+filepath.Join(t.TempDir(), "none.sock"), nil)
	_, err = cl.Units(ctx)
	var apiErr *Error
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("Units with nobody listening: %v, want a transport error", err)
	}
}

func TestClientError(t *testing.T) {
	tests := []struct {
		err      *Error
		want     string
		notFound bool
	}{
		{&Error{Code: 404, Message: "unit does not exist"}, "fleet API: 404: unit does not exist", true},
		{&Error{Code: 405}, "fleet API: 405: Method Not Allowed", false},
		{&Error{Code: 400, Message: "bad"}, "fleet API: 400: bad", false},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if got := errors.Is(tt.err, ErrNotFound); got != tt.notFound {
			t.Errorf("%v: errors.Is ErrNotFound = %v, want %v", tt.err, got, tt.notFound)
		}
	}
	// A body that is not fleet's error shape still gives a message.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "proxy says no", http.StatusBadGateway)
	}))
	t.Cleanup(ts.Close)
	cl, _ := NewClient(ts.URL, nil)
	_, err := cl.Machines(context.Background())
	if err == nil || err.Error() != "fleet API: 502: proxy says no" {
		t.Errorf("plain-text error: %v, want fleet API: 502: proxy says no", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.CreateCA(filepath.Join(dir, "ca"), pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(sub, name string, server bool) pki.Files {
		certPEM, keyPEM, err := ca.Issue(pki.IssueRequest{CommonName: name, Server: server, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		files, err := ca.WriteIdentity(filepath.Join(dir, sub), name, certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	node := issue("node", "node", true)
	client := issue("client", "client", false)

	cfg, err := node.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLSConfig: client auth %v, min version %x; want RequireAndVerifyClientCert and TLS 1.2+", cfg.ClientAuth, cfg.MinVersion)
	}
	e := newEnv(t, startEtcd(t), Options{})
	e.register(registry.Machine{ID: "m1"})
	ts := httptest.NewUnstartedServer(e.srv)
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(ts.Close)

	clientCfg, err := client.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(ts.URL, clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := cl.Machines(context.Background())
	if err != nil || len(ms) != 1 {
		t.Errorf("Machines over TLS: %v, %v", ms, err)
	}
	// The discovery document names the https endpoint.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientCfg}}
	resp, err := hc.Get(ts.URL + "/fleet/v1/discovery")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `"rootUrl": "` + ts.URL + `/"`; !strings.HasPrefix(ts.URL, "https://") || !strings.Contains(string(body), want) {
		t.Errorf("discovery over TLS lacks %s", want)
	}

	// Without a client certificate the handshake fails.
	noCert := &tls.Config{RootCAs: clientCfg.RootCAs, MinVersion: tls.VersionTLS12}
	cl, _ = NewClient(ts.URL, noCert)
	if _, err := cl.Machines(context.Background()); err == nil {
		t.Error("Machines without a client certificate succeeded")
	}
	if _, err := (pki.Files{CA: node.CA, Cert: filepath.Join(dir, "missing.crt"), Key: node.Key}).ServerTLS(); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("TLSConfig with a missing certificate: %v, want an error naming it", err)
	}
	// A client certificate can't serve.
	if _, err := client.ServerTLS(); err == nil {
		t.Error("TLSConfig with a client-only certificate succeeded")
	}
}
