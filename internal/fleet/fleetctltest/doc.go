// Package fleetctltest builds the real, unmodified fleetctl from fleet
// v1.0.0 (github.com/coreos/fleet) so that tests can run it against atoll's
// fleet v1 API with --endpoint.
//
//	bin := fleetctltest.Build(t) // compiled once per machine, then cached
//	stdout, stderr, err := fleetctltest.Run(t, bin, srv.URL, "list-machines")
//
// # Building
//
// fleet v1.0.0 predates Go modules (it vendored with glide and has no
// go.mod), so testdata/fleetctl.mod pins every dependency by hand and
// testdata/fleetctl.sum fixes their hashes. Build writes the two into a
// scratch directory as go.mod and go.sum and runs
//
//	CGO_ENABLED=0 GOFLAGS=-mod=readonly GOWORK=off GOTOOLCHAIN=local \
//	go build -trimpath -ldflags '-s -w -X github.com/coreos/fleet/version.Version=v1.0.0' \
//	  github.com/coreos/fleet/fleetctl
//
// which fetches modules through GOPROXY (the module proxy; github.com itself
// is never needed) and gives a bit-identical binary for a given Go toolchain.
// The -X flag is what fleet's own ./build script sets from git describe;
// without it fleetctl calls itself "0.0.0+wasnotbuiltproperly". The files
// are .mod/.sum rather than testdata/x/go.mod so that they can be embedded
// (go:embed cannot reach into a nested module); "go build -modfile" accepts
// them as they are.
//
// glide.lock's exact commits are not served by the proxy, so each pin is the
// nearest version the proxy has that compiles with a current toolchain. The
// deviations that matter:
//
//   - github.com/coreos/etcd v3.3.13+incompatible, not v3.1: until v3.3.12
//     the v2 client decodes with github.com/ugorji/go codec, whose old
//     releases panic at init on Go >= 1.22 ("encoding alphabet includes
//     duplicate symbols") and whose newer releases fail the generated code's
//     codecgen version check. v3.3.13 switched to json-iterator; that path is
//     only used with --driver=etcd anyway.
//   - github.com/json-iterator/go v1.1.12 with github.com/modern-go/reflect2
//     at the 2025 commit that works with Go >= 1.24's maps.
//   - google.golang.org/api 2017-10-05 (7a7376eff6a5): fleet's generated
//     schema/v1-gen.go needs gensupport.SendRequest and the 3-argument
//     gensupport.MarshalJSON; the only older copy on the proxy (2016-03)
//     lacks them.
//   - golang.org/x/sys v0.50.0 for github.com/vishvananda/netlink (glide
//     vendored it inside netlink).
//   - cobra/pflag at their 2017-01-30 commits, the closest to glide's; they
//     produce fleetctl's help output and flag parsing.
//
// # What fleetctl sends
//
// This is what TestWhatFleetctlSends records from the real binary; it is the
// contract for atoll's fleet API server.
//
// URLs. The first comma-separated --endpoint is parsed as a URL and
// "fleet/v1/" is joined onto its path: http://h:p → http://h:p/fleet/v1/...,
// http://h:p/some/prefix/ → /some/prefix/fleet/v1/.... For unix:///path/sock
// (or file://) fleetctl dials the socket and sends plain HTTP/1.1 with
// "Host: domain-sock" and the same /fleet/v1/... paths; unix://var/run/x
// (two slashes) fails with `unable to connect to host "var" with scheme
// "unix"`, and an endpoint without a scheme fails to parse. For https://
// the TLS config comes from --ca-file/--cert-file/--key-file (untested
// here). No HTTP proxy is used (the transport has no Proxy func) and there
// is no client timeout. With FLEETCTL_DEBUG=1 fleetctl logs each request
// ("DEBUG http.go:28: HTTP GET http://...") to stderr.
//
// Every request carries the query parameter alt=json, "User-Agent:
// google-api-go-client/0.5" and "Accept-Encoding: gzip" (Go's transport
// decodes a gzip reply transparently). Only PUT has a body, with
// "Content-Type: application/json". fleetctl never fetches
// /fleet/v1/discovery (the schema is compiled in), never sends the fields or
// If-None-Match parameters, and ignores the Server header.
//
// Routes and per-command traffic:
//
//	GET    /fleet/v1/machines?alt=json[&nextPageToken=T]  → {"machines":[{"id","primaryIP","metadata":{k:v}}],"nextPageToken"}
//	GET    /fleet/v1/units?alt=json[&nextPageToken=T]     → {"units":[Unit]}
//	GET    /fleet/v1/units/NAME?alt=json                  → Unit, or 404 (= "no such unit", not an error)
//	PUT    /fleet/v1/units/NAME?alt=json                  body Unit → 201 (created) / 204 (updated); body ignored
//	DELETE /fleet/v1/units/NAME?alt=json                  → 204; 404 is ignored by destroy
//	GET    /fleet/v1/state?alt=json[&nextPageToken=T]     → {"states":[UnitState]}
//	GET    /fleet/v1/state/NAME?alt=json                  → UnitState
//
// Unit is {"name","options":[{"section","name","value"}],"desiredState",
// "currentState","machineID"} and UnitState is {"name","hash","machineID",
// "systemdLoadState","systemdActiveState","systemdSubState"}; all fields are
// omitted when empty. List calls follow nextPageToken until it is empty,
// sending ?alt=json&nextPageToken=T. The state list's machineID and unitName
// filters exist in the client library but fleetctl v1.0.0 never sends them.
//
//	list-machines     GET machines (all pages)
//	list-unit-files   GET units
//	list-units        GET state; then GET machines once if any state has a
//	                  machineID (to print "id.../primaryIP")
//	submit F          GET units/N (404) → PUT units/N {"name":N,"options":[...]}
//	                  (no desiredState; fleet stores it as "inactive") → poll
//	                  GET units/N every 250ms until currentState=="inactive"
//	                  (desiredState for a Global=true unit). This poll has no
//	                  limit (submit has no --block-attempts; start and load
//	                  use theirs, default 0 = forever, even with --no-block):
//	                  a server that never reports currentState "inactive"
//	                  for a new unit hangs submit, start and load.
//	start --no-block F  as submit if the unit is new; else GET units/N (and
//	                  compare its options with the local file, warning if they
//	                  differ). Then GET units/N → PUT units/N
//	                  {"desiredState":"launched","name":N} (skipped if already
//	                  launched), prints "Triggered unit N start" twice.
//	start F           as above, then poll GET units/N until
//	                  currentState=="launched", GET machines, and poll
//	                  GET state/N until systemdActiveState=="active" and
//	                  systemdLoadState=="loaded".
//	destroy N         GET units (the whole list, to find N) → DELETE units/N.
//	                  With --no-block it then polls GET units/N every 2s until
//	                  404 (v1.0.0 has this flag inverted).
//
// PUT bodies are Go's encoding/json of the schema structs, in field order:
// {"name":"hello.service","options":[{"name":"Description","section":"Unit",
// "value":"Hello"},...]}. fleetd rejects a PUT whose Content-Type is not
// application/json (415) and, for an unknown unit without options, answers
// 409 "unit does not exist and options field empty".
//
// Errors. Any non-2xx reply becomes an error. If the body parses as
// {"error":{"code":C,"message":M}} with a non-empty message, fleetctl shows
// "googleapi: Error C: M" (C defaults to the HTTP status); otherwise it shows
// "googleapi: got HTTP response code S with body: B" with the raw body. fleet
// itself sends {"error":{"code":C,"message":M}} with Content-Type
// application/json, so always set a message. Command output then reads, for
// example:
//
//	Error retrieving list of active machines from fleet API (googleapi: Error 500: boom)
//	Possible issues: ... (three lines about etcd)
//	Error retrieving list of units from repository: googleapi: got HTTP response code 503 with body: not today
//	Error creating units: failed creating unit x.service: googleapi: Error 409: unit does not exist and options field empty
//
// on stderr with exit status 1. A malformed 2xx body gives the JSON decoder's
// error ("unexpected EOF"); a refused connection gives Go's
// `Get "http://.../fleet/v1/state?alt=json": dial tcp ...: connection refused`.
//
// # Output formats
//
// Tables go through text/tabwriter(minwidth 0, tabwidth 8, padding 1,
// padchar '\t'), so columns are separated by one or more tab characters:
//
//	MACHINE\t\tIP\t\tMETADATA
//	113f16a7...\t10.0.0.3\tregion=eu
//
// Machine IDs are cut to 8 characters plus "..." unless --full/-l; an empty
// IP or metadata prints "-"; metadata is k=v pairs sorted by key and joined
// with ",". --no-legend drops the header.
//
// # Other quirks of fleetctl v1.0.0
//
//   - No version check happens with the API driver: fleetctl does not look
//     at the server's version (only --driver=etcd compares itself against
//     the newest fleetd registered in etcd and warns if older).
//   - --request-timeout only applies to the etcd driver; API requests have
//     no timeout, so Run kills fleetctl after RunTimeout.
//   - Every global flag can also come from FLEETCTL_<FLAG> (e.g.
//     FLEETCTL_ENDPOINT, FLEETCTL_DRIVER); Run passes none. --debug is read
//     before flags are parsed, so only FLEETCTL_DEBUG=1 enables debug logs.
//   - "fleetctl --version" works only as the first argument; after
//     --endpoint=... it prints the help instead. Use "fleetctl version".
//   - An unknown command prints an error but exits 0.
//   - destroy of a unit that is not in the list prints "Units not found in
//     registry" and exits 0.
//   - --driver is "API" by default, so the code that switches to etcd for
//     endpoints on ports 2379/4001 never fires.
package fleetctltest
