package fleetapi

import (
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// discoveryJSON is fleet's discovery document, coreos/fleet:
// schema/v1.json as fleet v1.0.0 serves it (Apache License 2.0, The
// fleet Authors), with $ENDPOINT where the server's address goes.
//
//go:embed discovery.json
var discoveryJSON string

// discovery serves the discovery document. fleet sent $ENDPOINT as it
// is; atoll puts in the address the request came to, so that rootUrl and
// baseUrl are usable. Any method but GET is 400, as in fleet
// (coreos/fleet: api/discovery.go).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		sendError(w, http.StatusBadRequest, errors.New("only HTTP GET supported against this resource"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// The address goes inside JSON strings: escape it as one.
	quoted, _ := json.Marshal(endpointOf(r))
	endpoint := string(quoted[1 : len(quoted)-1])
	_, _ = w.Write([]byte(strings.ReplaceAll(discoveryJSON, "$ENDPOINT", endpoint)))
}

// endpointOf is scheme://host of the request, as the client reached us
// (a unix socket's requests name no host: "http://localhost").
func endpointOf(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}
