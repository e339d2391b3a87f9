package fleetapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
)

const webUnit = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep 1000\n"

func TestDefaultRoutes(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/", http.StatusMethodNotAllowed},
		{"GET", "/v1-alpha", http.StatusMethodNotAllowed},
		{"GET", "/fleet/v1", http.StatusMethodNotAllowed},
		{"POST", "/fleet/v1", http.StatusMethodNotAllowed},
		{"GET", "/bogus", http.StatusNotFound},
		{"GET", "/fleet/v1/", http.StatusNotFound},
		{"GET", "/fleet/v1/bogus", http.StatusNotFound},
		{"GET", "/fleet/v1/units/", http.StatusNotFound},
		{"GET", "/fleet/v1/units/a.service/b", http.StatusNotFound},
		{"GET", "/fleet/v1/units/a.service/journal/x", http.StatusNotFound},
		{"GET", "/fleet/v1/state/", http.StatusNotFound},
		{"GET", "/fleet/v1/state/a/b", http.StatusNotFound},
		{"GET", "/fleet/v1/machines/x", http.StatusNotFound},
		{"GET", "/fleet/v1/discovery/x", http.StatusNotFound},
		{"GET", "/metrics", http.StatusNotFound},
	}
	for _, tt := range tests {
		got := e.do(tt.method, tt.path, "")
		if got.code != tt.code {
			t.Errorf("%s %s: got %d, want %d (%s)", tt.method, tt.path, got.code, tt.code, got.body)
		}
		want := fmt.Sprintf(`{"error":{"code":%d,"message":""}}`, tt.code)
		if got.body != want {
			t.Errorf("%s %s: body %s, want %s", tt.method, tt.path, got.body, want)
		}
		if s := got.header.Get("Server"); s != "fleetd/test" {
			t.Errorf("%s %s: Server header %q, want fleetd/test", tt.method, tt.path, s)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", tt.method, tt.path, ct)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	tests := []struct {
		methods []string
		path    string
		code    int
		message string
	}{
		{[]string{"PUT", "POST", "DELETE", "PATCH"}, "/units", 405, "only GET supported against this resource"},
		{[]string{"POST", "PATCH", "HEAD"}, "/units/a.service", 405, "only GET, PUT and DELETE supported against this resource"},
		{[]string{"PUT", "POST", "DELETE"}, "/units/a.service/journal", 405, "only GET supported against this resource"},
		{[]string{"PUT", "POST", "DELETE", "PATCH"}, "/state", 405, "only GET supported against this resource"},
		{[]string{"PUT", "POST", "DELETE"}, "/state/a.service", 405, "only GET supported against this resource"},
		{[]string{"PUT", "POST", "DELETE"}, "/machines", 405, "only GET and PATCH supported against this resource"},
		// fleet answers 400 here (coreos/fleet: api/discovery_test.go).
		{[]string{"PUT", "POST", "DELETE", "PATCH"}, "/discovery", 400, "only HTTP GET supported against this resource"},
	}
	for _, tt := range tests {
		for _, prefix := range []string{"/fleet/v1", "/v1-alpha"} {
			for _, m := range tt.methods {
				got := e.do(m, prefix+tt.path, "")
				if got.code != tt.code {
					t.Errorf("%s %s: got %d, want %d", m, prefix+tt.path, got.code, tt.code)
				}
				if m != "HEAD" && got.errorMessage() != tt.message {
					t.Errorf("%s %s: message %q, want %q", m, prefix+tt.path, got.errorMessage(), tt.message)
				}
			}
		}
	}
}

func TestUnavailable(t *testing.T) {
	srv := NewServer(Options{
		Registry: func(context.Context) (*registry.Registry, error) { return nil, errors.New("store not ready") },
		Version:  "9.9",
	})
	e := &testEnv{t: t, srv: srv}
	e.ts = newHTTPTest(t, srv)
	for _, p := range []string{"/", "/fleet/v1/units", "/fleet/v1/machines", "/fleet/v1/discovery", "/v1-alpha/state", "/bogus"} {
		got := e.do("GET", p, "")
		if got.code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: got %d, want 503", p, got.code)
		}
		if want := "fleet server unable to communicate with etcd: store not ready"; got.errorMessage() != want {
			t.Errorf("GET %s: message %q, want %q", p, got.errorMessage(), want)
		}
		if s := got.header.Get("Server"); s != "fleetd/9.9" {
			t.Errorf("GET %s: Server %q, want fleetd/9.9", p, s)
		}
	}
	cl, err := NewClient(e.ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Units(context.Background())
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusServiceUnavailable {
		t.Fatalf("client Units: got %v, want a 503 *Error", err)
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	for _, prefix := range []string{"/fleet/v1", "/v1-alpha"} {
		got := e.do("GET", prefix+"/discovery", "")
		if got.code != http.StatusOK {
			t.Fatalf("GET discovery: %d %s", got.code, got.body)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var doc struct {
			ID       string `json:"id"`
			RootURL  string `json:"rootUrl"`
			BaseURL  string `json:"baseUrl"`
			BasePath string `json:"basePath"`
			Schemas  map[string]json.RawMessage
		}
		if err := json.Unmarshal([]byte(got.body), &doc); err != nil {
			t.Fatalf("discovery is not JSON: %v", err)
		}
		if doc.ID != "fleet:v1" || doc.BasePath != "/fleet/v1/" {
			t.Errorf("id %q basePath %q, want fleet:v1 and /fleet/v1/", doc.ID, doc.BasePath)
		}
		if want := e.ts.URL + "/"; doc.RootURL != want {
			t.Errorf("rootUrl %q, want %q", doc.RootURL, want)
		}
		if want := e.ts.URL + "/fleet/v1/"; doc.BaseURL != want {
			t.Errorf("baseUrl %q, want %q", doc.BaseURL, want)
		}
		for _, s := range []string{"Machine", "MachinePage", "Unit", "UnitOption", "UnitPage", "UnitState", "UnitStatePage"} {
			if _, ok := doc.Schemas[s]; !ok {
				t.Errorf("schema %s missing", s)
			}
		}
		// Apart from the endpoint, fleet's document byte for byte.
		if want := strings.ReplaceAll(discoveryJSON, "$ENDPOINT", e.ts.URL); got.body != want {
			t.Errorf("discovery differs from fleet's schema/v1.json")
		}
	}
}

func TestUnitLifecycle(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	ctx := context.Background()

	got := e.do("GET", "/fleet/v1/units", "")
	if got.code != 200 || got.body != "{}" {
		t.Fatalf("empty list: %d %s, want 200 {}", got.code, got.body)
	}
	got = e.do("PUT", "/fleet/v1/units/web.service", unitJSON(t, "web.service", webUnit, "launched"))
	if got.code != http.StatusCreated || got.body != "" {
		t.Fatalf("create: %d %q, want 201 and no body", got.code, got.body)
	}
	u, err := e.reg.Unit(ctx, "web.service")
	if err != nil || u.DesiredState != registry.Launched {
		t.Fatalf("registry after create: %+v, %v; want launched", u, err)
	}
	if want := parseUnit(t, "web.service", webUnit).Hash(); u.Hash != want {
		t.Errorf("stored hash %s, want %s", u.Hash, want)
	}

	got = e.do("GET", "/fleet/v1/units/web.service", "")
	want := `{"name":"web.service","options":[` +
		`{"section":"Unit","name":"Description","value":"web"},` +
		`{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"}],` +
		`"desiredState":"launched","currentState":"inactive"}`
	if got.code != 200 || canonicalJSON(t, got.body) != canonicalJSON(t, want) {
		t.Errorf("GET unit:\n got %d %s\nwant 200 %s", got.code, got.body, want)
	}
	got = e.do("GET", "/v1-alpha/units", "")
	if wantList := `{"units":[` + want + `]}`; canonicalJSON(t, got.body) != canonicalJSON(t, wantList) {
		t.Errorf("GET units:\n got %s\nwant %s", got.body, wantList)
	}

	// Same options, no desired state: nothing to do, and fleet says so.
	got = e.do("PUT", "/fleet/v1/units/web.service", unitJSON(t, "web.service", webUnit, ""))
	if got.code != http.StatusConflict || got.errorMessage() != "must provide DesiredState to update existing unit" {
		t.Errorf("PUT same options without state: %d %s, want 409", got.code, got.body)
	}
	// Same options, new state; then state only, name from the URL.
	got = e.do("PUT", "/fleet/v1/units/web.service", unitJSON(t, "web.service", webUnit, "loaded"))
	if got.code != http.StatusNoContent {
		t.Errorf("PUT same options, loaded: %d %s, want 204", got.code, got.body)
	}
	got = e.do("PUT", "/fleet/v1/units/web.service", `{"desiredState":"inactive"}`)
	if got.code != http.StatusNoContent {
		t.Errorf("PUT state only: %d %s, want 204", got.code, got.body)
	}
	if u, _ := e.reg.Unit(ctx, "web.service"); u.DesiredState != registry.Inactive {
		t.Errorf("desired state %q, want inactive", u.DesiredState)
	}

	// New options replace the file; the state defaults to inactive as in
	// fleet's CreateUnit.
	if err := e.reg.SetDesiredState(ctx, "web.service", registry.Launched); err != nil {
		t.Fatal(err)
	}
	newText := webUnit + "Restart=always\n"
	got = e.do("PUT", "/fleet/v1/units/web.service", unitJSON(t, "web.service", newText, ""))
	if got.code != http.StatusCreated {
		t.Errorf("PUT new options: %d %s, want 201", got.code, got.body)
	}
	u, _ = e.reg.Unit(ctx, "web.service")
	if want := parseUnit(t, "web.service", newText).Hash(); u.Hash != want || u.DesiredState != registry.Inactive {
		t.Errorf("after replace: hash %s state %s, want %s inactive", u.Hash, u.DesiredState, want)
	}

	got = e.do("DELETE", "/fleet/v1/units/web.service", "")
	if got.code != http.StatusNoContent || got.body != "" {
		t.Errorf("DELETE: %d %q, want 204", got.code, got.body)
	}
	for _, m := range []string{"DELETE", "GET"} {
		got = e.do(m, "/fleet/v1/units/web.service", "")
		if got.code != http.StatusNotFound || got.errorMessage() != "unit does not exist" {
			t.Errorf("%s after delete: %d %s, want 404 unit does not exist", m, got.code, got.body)
		}
	}
	got = e.do("PUT", "/fleet/v1/units/web.service", `{"desiredState":"launched"}`)
	if got.code != http.StatusConflict || got.errorMessage() != "unit does not exist and options field empty" {
		t.Errorf("PUT state of missing unit: %d %s, want 409", got.code, got.body)
	}
}

func TestPutUnitRefusals(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	e.submit("tmpl@.service", webUnit, registry.Inactive)
	e.submit("web.service", webUnit, registry.Inactive)
	opts := func(name, text string) string { return unitJSON(t, name, text, "") }
	tests := []struct {
		name        string
		path        string
		contentType []string
		body        string
		code        int
		message     string // a substring
	}{
		{"no content type", "web.service", []string{}, `{}`, 415, "expected 1 Content-Type, got 0"},
		{"two content types", "web.service", []string{"application/json", "application/json"}, `{}`, 415, "expected 1 Content-Type, got 2"},
		{"xml", "web.service", []string{"application/xml"}, `{}`, 415, "only acceptable Content-Type is application/json"},
		{"json with charset", "web.service", []string{"application/json; charset=utf-8"}, `{"desiredState":"loaded"}`, 204, ""},
		{"bad JSON", "web.service", nil, `{"name":`, 400, "unable to decode body"},
		{"not an object", "web.service", nil, `[1]`, 400, "unable to decode body"},
		{"wrong type", "web.service", nil, `{"options":"x"}`, 400, "unable to decode body"},
		{"empty body", "web.service", nil, ``, 400, "unable to decode body: EOF"},
		{"name differs", "web.service", nil, `{"name":"other.service","desiredState":"loaded"}`, 400, `name in URL "web.service" differs from unit name in request body "other.service"`},
		{"invalid name", "web", nil, `{"desiredState":"loaded"}`, 400, `unit name must contain "."`},
		{"invalid type", "web.bogus", nil, opts("web.bogus", webUnit), 400, `invalid unit type: "bogus"`},
		{"invalid char", "we$b.service", nil, `{"desiredState":"loaded"}`, 400, `invalid character '$' in unit name`},
		{"new without options", "new.service", nil, `{"desiredState":"loaded"}`, 409, "unit does not exist and options field empty"},
		{"new with empty options", "new.service", nil, `{"options":[],"desiredState":"loaded"}`, 409, "unit does not exist and options field empty"},
		{"null option", "new.service", nil, `{"options":[null]}`, 400, "option 1 is missing"},
		{"option with newline", "new.service", nil, `{"options":[{"section":"Service","name":"ExecStart","value":"a\nb"}]}`, 400, "cannot be written to a unit file"},
		{"option without name", "new.service", nil, `{"options":[{"section":"Service","value":"a"}]}`, 400, "cannot be written to a unit file"},
		{"invalid X-Fleet", "new.service", nil, opts("new.service", webUnit+"[X-Fleet]\nGlobal=true\nMachineID=0123456789abcdef0123456789abcdef\n"), 400, "MachineID"},
		{"invalid X-Fleet on replace", "web.service", nil, opts("web.service", webUnit+"[X-Fleet]\nConflicts=a*\nReplaces=b*\n"), 400, "Conflicts"},
		{"activate template", "tmpl@.service", nil, `{"desiredState":"launched"}`, 400, `cannot activate template "tmpl@.service"`},
		{"load template", "tmpl@.service", nil, `{"desiredState":"loaded"}`, 400, `cannot activate template`},
		{"new template launched", "new@.service", nil, unitJSON(t, "new@.service", webUnit, "launched"), 400, `cannot activate template`},
		{"template inactive", "tmpl@.service", nil, `{"desiredState":"inactive"}`, 204, ""},
		{"bad state", "web.service", nil, `{"desiredState":"running"}`, 400, `invalid value "running" for desiredState`},
		{"bad state on create", "new.service", nil, unitJSON(t, "new.service", webUnit, "up"), 400, `invalid value "up"`},
		{"too big", "new.service", nil, `{"name":"` + strings.Repeat("a", maxUnitBody) + `"}`, 413, "over"},
		{"instance created", "tmpl@1.service", nil, unitJSON(t, "tmpl@1.service", webUnit, "launched"), 201, ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.contentType == nil {
			h.Set("Content-Type", "application/json")
		}
		for _, ct := range tt.contentType {
			h.Add("Content-Type", ct)
		}
		got := e.doHeader("PUT", "/fleet/v1/units/"+tt.path, tt.body, h)
		if got.code != tt.code {
			t.Errorf("%s: got %d %s, want %d", tt.name, got.code, got.body, tt.code)
			continue
		}
		if tt.code >= 400 && !strings.Contains(got.errorMessage(), tt.message) {
			t.Errorf("%s: message %q, want it to contain %q", tt.name, got.errorMessage(), tt.message)
		}
		if tt.code >= 400 {
			var body schema.Error
			if err := json.Unmarshal([]byte(got.body), &body); err != nil || body.Error.Code != tt.code {
				t.Errorf("%s: error body %s: want code %d", tt.name, got.body, tt.code)
			}
		}
	}
	if _, err := e.reg.Unit(context.Background(), "new.service"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a refused PUT stored new.service: %v", err)
	}
	if u, _ := e.reg.Unit(context.Background(), "web.service"); u.Hash != parseUnit(t, "web.service", webUnit).Hash() {
		t.Errorf("a refused PUT replaced web.service's file")
	}
}

func TestValidateName(t *testing.T) {
	// fleet's cases (coreos/fleet: api/units_test.go TestValidateName).
	bad := []string{
		"",
		fmt.Sprintf("%0257s", ".service"),
		fmt.Sprintf("%0512s", ".mount"),
		"fooservice", "barmount", "bar@foo",
		"foo.", "foo.service.", "foo@foo.service.",
		"foo.bar", "hello.cerveza", "foo.servICE",
		"foo%.service", "foo$asd.service", "hello##.mount", "yes/no.service", "this+that.mount", "dog=woof@.mount",
		"@foo.service", "@this.mount",
		"foo@1.automount", "foo@1.busname", "foo@1.device", "foo@1.mount", "foo@1.scope", "foo@1.slice", "foo@1.snapshot", "foo@1.swap",
		"föö.service",
	}
	for _, name := range bad {
		if err := ValidateName(name); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", name)
		}
	}
	good := []string{
		"foo.service", "hello.mount", "foo@123.service", "foo@.service", "yo.yo.service", "hello@world.path",
		"hello:world.service", `yes@no\.service`, "foo-bar.mount", "jalapano_chips.service",
		fmt.Sprintf("%0256s", ".service"),
		"foo@1.path", "foo@1.service", "foo@1.socket", "foo@1.target", "foo@1.timer",
	}
	for _, name := range good {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	msgs := map[string]string{
		"":                                    "unit name cannot be empty",
		"a":                                   `unit name must contain "."`,
		"a.":                                  `unit name cannot end in "."`,
		"a.b":                                 `invalid unit type: "b"`,
		"a@1.mount":                           `invalid unit type for template: "mount"`,
		"a+.service":                          `invalid character '+' in unit name`,
		"@a.service":                          `unit name cannot start in "@"`,
		strings.Repeat("a", 300) + ".service": "unit name exceeds maximum length (256)",
	}
	for name, want := range msgs {
		if err := ValidateName(name); err == nil || err.Error() != want {
			t.Errorf("ValidateName(%.20q) = %v, want %q", name, err, want)
		}
	}
}

func TestIsTemplate(t *testing.T) {
	for name, want := range map[string]bool{
		"a@.service": true, "a@1.service": false, "a.service": false, "a@b@.service": false, "a.b@.service": true,
	} {
		if got := isTemplate(name); got != want {
			t.Errorf("isTemplate(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestUnitsShowSchedule(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	web := e.submit("web.service", webUnit, registry.Launched)
	e.submit("db.service", webUnit+"[X-Fleet]\nMachineMetadata=disk=ssd\n", registry.Launched)
	glob := e.submit("logger.service", webUnit+"[X-Fleet]\nGlobal=true\n", registry.Launched)
	e.place(registry.Placement{Unit: "web.service", Machine: "m1", Hash: web.Hash(), DesiredState: registry.Launched})
	e.place(registry.Placement{Unit: "logger.service", Machine: "m1", Hash: glob.Hash(), DesiredState: registry.Launched})
	e.place(registry.Placement{Unit: "logger.service", Machine: "m2", Hash: glob.Hash(), DesiredState: registry.Launched})
	e.putStates(registry.UnitState{Unit: "web.service", Machine: "m1", Hash: web.Hash(), LoadState: "loaded", ActiveState: "active", SubState: "running", Reached: registry.Launched})
	dbHash := parseUnit(t, "db.service", webUnit+"[X-Fleet]\nMachineMetadata=disk=ssd\n").Hash()
	e.setUnplaced(registry.Unplaced{Unit: "db.service", Hash: dbHash, Reason: "no machine fits: 2 fail MachineMetadata (disk=ssd)"})

	units, err := e.cl.Units(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ name, machine, current, desired, reason string }
	var got []row
	for _, u := range units {
		got = append(got, row{u.Name, u.MachineID, u.CurrentState, u.DesiredState, u.Reason})
	}
	want := []row{
		{"db.service", "", "inactive", "launched", "no machine fits: 2 fail MachineMetadata (disk=ssd)"},
		{"logger.service", "", "inactive", "launched", ""},
		{"web.service", "m1", "launched", "launched", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("units:\n got %v\nwant %v", got, want)
	}
	got1, err := e.cl.Unit(context.Background(), "web.service")
	if err != nil || got1.MachineID != "m1" || got1.CurrentState != "launched" {
		t.Errorf("unit web.service: %+v, %v; want launched on m1", got1, err)
	}
	raw := e.do("GET", "/fleet/v1/units/db.service", "")
	if !strings.Contains(raw.body, `"reason":"no machine fits: 2 fail MachineMetadata (disk=ssd)"`) {
		t.Errorf("db.service: %s, want its reason", raw.body)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	ctx := context.Background()
	// 250 units in one transaction-free loop through the registry.
	for i := range 250 {
		e.submit(fmt.Sprintf("u%03d.service", i), webUnit, registry.Inactive)
	}
	token := ""
	var names []string
	var sizes []int
	for page := 1; ; page++ {
		path := "/fleet/v1/units"
		if token != "" {
			path += "?nextPageToken=" + token
		}
		got := e.do("GET", path, "")
		if got.code != 200 {
			t.Fatalf("page %d: %d %s", page, got.code, got.body)
		}
		var p schema.UnitPage
		if err := json.Unmarshal([]byte(got.body), &p); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(p.Units))
		for _, u := range p.Units {
			names = append(names, u.Name)
		}
		if p.NextPageToken == "" {
			break
		}
		if want := (pageToken{Limit: 100, Page: uint16(page + 1)}).encode(); p.NextPageToken != want {
			t.Errorf("page %d: next token %q, want %q", page, p.NextPageToken, want)
		}
		token = p.NextPageToken
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("page sizes %v, want [100 100 50]", sizes)
	}
	for i, n := range names {
		if want := fmt.Sprintf("u%03d.service", i); n != want {
			t.Fatalf("unit %d is %s, want %s (sorted by name)", i, n, want)
		}
	}
	all, err := e.cl.Units(ctx)
	if err != nil || len(all) != 250 {
		t.Errorf("client Units: %d units, %v; want 250", len(all), err)
	}

	// fleet's tokens, and fleet's quirk: page 3 of 100 ends the list
	// exactly when there are 300 and names an empty page 4.
	if got := (pageToken{Limit: 19, Page: 11852}).encode(); got != "EwBMLg==" {
		t.Errorf("token encoding %q, want fleet's EwBMLg==", got)
	}
	for i := 250; i < 300; i++ {
		e.submit(fmt.Sprintf("u%03d.service", i), webUnit, registry.Inactive)
	}
	got := e.do("GET", "/fleet/v1/units?nextPageToken="+(pageToken{100, 3}).encode(), "")
	var p schema.UnitPage
	_ = json.Unmarshal([]byte(got.body), &p)
	if len(p.Units) != 100 || p.NextPageToken != (pageToken{100, 4}).encode() {
		t.Errorf("page 3 of 300: %d units, next %q; want 100 and page 4", len(p.Units), p.NextPageToken)
	}
	got = e.do("GET", "/fleet/v1/units?nextPageToken="+(pageToken{100, 4}).encode(), "")
	if got.code != 200 || got.body != "{}" {
		t.Errorf("page 4 of 300: %d %s, want 200 {}", got.code, got.body)
	}

	bad := map[string]string{
		"bogus":                      "illegal base64 data",
		"":                           "EOF",
		"AAA=":                       "unexpected EOF",
		"ZAAAAA==":                   "token page must be greater than zero",
		"wjAAAA==":                   "token limit must be 100",
		"ZABMLg==&nextPageToken=ZAB": "too many values for page token",
	}
	for _, route := range []string{"/fleet/v1/units", "/fleet/v1/state", "/fleet/v1/machines", "/v1-alpha/units"} {
		for tok, msg := range bad {
			got := e.do("GET", route+"?nextPageToken="+tok, "")
			if got.code != http.StatusBadRequest || !strings.Contains(got.errorMessage(), msg) {
				t.Errorf("GET %s?nextPageToken=%s: %d %s, want 400 containing %q", route, tok, got.code, got.body, msg)
			}
		}
	}
	// Extra bytes after the four fleet reads are ignored, as in fleet.
	got = e.do("GET", "/fleet/v1/units?nextPageToken=ZAABAAAA", "")
	if got.code != 200 {
		t.Errorf("token with extra bytes: %d %s, want 200", got.code, got.body)
	}
}

func TestPaginationSmallLimit(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{TokenLimit: 2})
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		e.register(registry.Machine{ID: id, PublicIP: fmt.Sprintf("10.0.0.%d", i)})
		e.putStates(registry.UnitState{Unit: "a.service", Machine: id, LoadState: "loaded"})
	}
	ctx := context.Background()
	ms, err := e.cl.Machines(ctx)
	if err != nil || len(ms) != 5 {
		t.Fatalf("Machines: %d, %v; want 5", len(ms), err)
	}
	for i, m := range ms {
		if want := fmt.Sprintf("m%d", i); m.ID != want {
			t.Errorf("machine %d: %s, want %s", i, m.ID, want)
		}
	}
	states, err := e.cl.UnitStates(ctx, "", "")
	if err != nil || len(states) != 5 {
		t.Fatalf("UnitStates: %d, %v; want 5", len(states), err)
	}
	got := e.do("GET", "/fleet/v1/machines", "")
	var p schema.MachinePage
	_ = json.Unmarshal([]byte(got.body), &p)
	if len(p.Machines) != 2 || p.NextPageToken != (pageToken{2, 2}).encode() {
		t.Errorf("first page: %s, want 2 machines and page 2", got.body)
	}
	got = e.do("GET", "/fleet/v1/machines?nextPageToken="+(pageToken{100, 1}).encode(), "")
	if got.code != 400 || got.errorMessage() != "token limit must be 2" {
		t.Errorf("token of limit 100: %d %s, want 400 token limit must be 2", got.code, got.body)
	}
	if s := NewServer(Options{TokenLimit: 1 << 20}); s.tokenLimit != 0xffff {
		t.Errorf("TokenLimit 1<<20 gives %d, want 65535", s.tokenLimit)
	}
	if s := NewServer(Options{}); s.tokenLimit != DefaultTokenLimit {
		t.Errorf("default TokenLimit %d, want %d", s.tokenLimit, DefaultTokenLimit)
	}
}

func TestState(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	web := e.submit("web.service", webUnit, registry.Launched)
	// GET /state/{name} reads the machines the unit is placed on.
	e.place(registry.Placement{Unit: "web.service", Machine: "m1", Hash: web.Hash(), DesiredState: registry.Launched})
	e.place(registry.Placement{Unit: "web.service", Machine: "m2", Hash: web.Hash(), DesiredState: registry.Launched})
	e.putStates(
		registry.UnitState{Unit: "web.service", Machine: "m2", Hash: web.Hash(), LoadState: "loaded", ActiveState: "active", SubState: "running"},
		registry.UnitState{Unit: "web.service", Machine: "m1", Hash: web.Hash(), LoadState: "loaded", ActiveState: "failed", SubState: "failed"},
		registry.UnitState{Unit: "db.service", Machine: "m2", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
	)
	h := web.Hash().String()
	all := `{"states":[` +
		`{"name":"db.service","machineID":"m2","systemdLoadState":"loaded","systemdActiveState":"inactive","systemdSubState":"dead"},` +
		`{"name":"web.service","hash":"` + h + `","machineID":"m1","systemdLoadState":"loaded","systemdActiveState":"failed","systemdSubState":"failed"},` +
		`{"name":"web.service","hash":"` + h + `","machineID":"m2","systemdLoadState":"loaded","systemdActiveState":"active","systemdSubState":"running"}]}`
	tests := []struct{ query, want string }{
		{"", all},
		{"?machineID=m2", `{"states":[` +
			`{"name":"db.service","machineID":"m2","systemdLoadState":"loaded","systemdActiveState":"inactive","systemdSubState":"dead"},` +
			`{"name":"web.service","hash":"` + h + `","machineID":"m2","systemdLoadState":"loaded","systemdActiveState":"active","systemdSubState":"running"}]}`},
		{"?unitName=web.service&machineID=m1", `{"states":[` +
			`{"name":"web.service","hash":"` + h + `","machineID":"m1","systemdLoadState":"loaded","systemdActiveState":"failed","systemdSubState":"failed"}]}`},
		{"?unitName=nothing.service", `{}`},
		{"?machineID=m1&machineID=m2", `{"states":[` +
			`{"name":"web.service","hash":"` + h + `","machineID":"m1","systemdLoadState":"loaded","systemdActiveState":"failed","systemdSubState":"failed"}]}`},
	}
	for _, tt := range tests {
		got := e.do("GET", "/fleet/v1/state"+tt.query, "")
		if got.code != 200 || canonicalJSON(t, got.body) != canonicalJSON(t, tt.want) {
			t.Errorf("GET /state%s:\n got %d %s\nwant 200 %s", tt.query, got.code, got.body, tt.want)
		}
	}
	got := e.do("GET", "/fleet/v1/state/web.service", "")
	if want := `{"name":"web.service","hash":"` + h + `","machineID":"m1","systemdLoadState":"loaded","systemdActiveState":"failed","systemdSubState":"failed"}`; canonicalJSON(t, got.body) != canonicalJSON(t, want) {
		t.Errorf("GET /state/web.service: %s, want %s", got.body, want)
	}
	got = e.do("GET", "/fleet/v1/state/none.service", "")
	if got.code != 404 || got.errorMessage() != "unit state does not exist" {
		t.Errorf("GET /state/none.service: %d %s, want 404", got.code, got.body)
	}
	states, err := e.cl.UnitStates(context.Background(), "m2", "web.service")
	if err != nil || len(states) != 1 || states[0].SystemdSubState != "running" {
		t.Errorf("client UnitStates(m2, web): %+v, %v", states, err)
	}
}

func TestMachines(t *testing.T) {
	e := newEnv(t, startEtcd(t), Options{})
	e.register(registry.Machine{ID: "XXX", Metadata: map[string]string{"region": "us"}})
	e.register(registry.Machine{ID: "YYY", PublicIP: "1.2.3.4"})

	got := e.do("GET", "/fleet/v1/machines", "")
	if want := `{"machines":[{"id":"XXX","metadata":{"region":"us"}},{"id":"YYY","primaryIP":"1.2.3.4"}]}`; canonicalJSON(t, got.body) != canonicalJSON(t, want) {
		t.Errorf("machines:\n got %s\nwant %s", got.body, want)
	}
	// fleet's body (coreos/fleet: api/machines_test.go), and the plain
	// string its documentation shows.
	got = e.do("PATCH", "/fleet/v1/machines", `
	[{"op": "add", "path": "/XXX/metadata/foo", "value": { "value": "bar" }},
	{"op": "replace", "path": "/YYY/metadata/ping", "value": "splat"}]`)
	if got.code != http.StatusNoContent || got.body != "" {
		t.Fatalf("PATCH: %d %s, want 204", got.code, got.body)
	}
	got = e.do("GET", "/fleet/v1/machines", "")
	if want := `{"machines":[{"id":"XXX","metadata":{"foo":"bar","region":"us"}},{"id":"YYY","metadata":{"ping":"splat"},"primaryIP":"1.2.3.4"}]}`; canonicalJSON(t, got.body) != canonicalJSON(t, want) {
		t.Errorf("machines after PATCH:\n got %s\nwant %s", got.body, want)
	}
	got = e.do("PATCH", "/v1-alpha/machines", `[{"op": "remove", "path": "/XXX/metadata/foo"}, {"op": "remove", "path": "/YYY/metadata/ping"}, {"op": "remove", "path": "/YYY/metadata/never-set"}]`)
	if got.code != http.StatusNoContent {
		t.Fatalf("PATCH remove: %d %s, want 204", got.code, got.body)
	}
	got = e.do("GET", "/fleet/v1/machines", "")
	if want := `{"machines":[{"id":"XXX","metadata":{"region":"us"}},{"id":"YYY","primaryIP":"1.2.3.4"}]}`; canonicalJSON(t, got.body) != canonicalJSON(t, want) {
		t.Errorf("machines after remove:\n got %s\nwant %s", got.body, want)
	}

	bad := []struct{ body, message string }{
		{`[{"op": "noop", "path": "/XXX/metadata/foo", "value": { "value": "bar" }}]`, "invalid op: expect add, remove, or replace"},
		{`[{"op": "add", "path": "/XXX/foo", "value": { "value": "bar" }}]`, "machine metadata path invalid"},
		{`[{"op": "add", "path": "/XXX/metadata/a/b", "value": "x"}]`, "machine metadata path invalid"},
		{`[{"op": "add", "path": "/XXX/metadata/foo"}]`, "invalid value: add and replace require a value"},
		{`[{"op": "add", "path": "/XXX/metadata/foo", "value": ""}]`, "invalid value: add and replace require a value"},
		{`[{"op": "add", "path": "/XXX/metadata/foo", "value": 3}]`, "cannot unmarshal"},
		{`{"op": "add"}`, "cannot unmarshal"},
		{`[`, "unexpected EOF"},
		{``, "EOF"},
		// All checked before any applies.
		{`[{"op": "add", "path": "/XXX/metadata/ok", "value": "x"}, {"op": "bad", "path": "/XXX/metadata/foo"}]`, "invalid op"},
	}
	for _, tt := range bad {
		got := e.do("PATCH", "/fleet/v1/machines", tt.body)
		if got.code != http.StatusBadRequest || !strings.Contains(got.errorMessage(), tt.message) {
			t.Errorf("PATCH %s: %d %s, want 400 containing %q", tt.body, got.code, got.body, tt.message)
		}
	}
	got = e.do("GET", "/fleet/v1/machines", "")
	if strings.Contains(got.body, `"ok"`) {
		t.Errorf("a refused PATCH applied part of itself: %s", got.body)
	}

	ctx := context.Background()
	if err := e.cl.SetMachineMetadata(ctx, "YYY", "disk", "ssd"); err != nil {
		t.Fatal(err)
	}
	ms, err := e.cl.Machines(ctx)
	if err != nil || len(ms) != 2 || ms[1].Metadata["disk"] != "ssd" {
		t.Fatalf("after SetMachineMetadata: %+v, %v", ms, err)
	}
	if err := e.cl.DeleteMachineMetadata(ctx, "YYY", "disk"); err != nil {
		t.Fatal(err)
	}
	ms, _ = e.cl.Machines(ctx)
	if _, ok := ms[1].Metadata["disk"]; ok {
		t.Errorf("disk still set after DeleteMachineMetadata: %v", ms[1].Metadata)
	}
	err = e.cl.SetMachineMetadata(ctx, "YYY", "bad key", "x")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || apiErr.Message != "machine metadata path invalid" {
		t.Errorf("SetMachineMetadata with a bad key: %v, want a 400", err)
	}
}
