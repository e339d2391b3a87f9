package fleetapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/unit"
	"atoll.dev/atoll/internal/version"
)

// DefaultTokenLimit is how many items a page holds unless configured:
// fleet's token_limit.
const DefaultTokenLimit = 100

// Options configure a Server.
type Options struct {
	// Registry returns the registry to serve from; an error means the
	// store is not reachable yet, and the request gets 503.
	Registry func(ctx context.Context) (*registry.Registry, error)
	// TokenLimit is the number of items per page (default 100, at most
	// 65535: page tokens hold it in 16 bits).
	TokenLimit int
	// Version is shown in the Server header, "fleetd/<Version>" as fleet
	// sends it (default atoll's version).
	Version string
	// MachineID is this machine's ID: journal reads for units scheduled
	// here are served from Journal.
	MachineID string
	// Journal reads this machine's unit journals; nil makes the journal
	// route answer 501 for units scheduled here.
	Journal service.Journal
	// PeerClient reaches other machines' APIs (registry.Machine.APIURL)
	// to proxy journal reads; nil means http.DefaultClient.
	PeerClient *http.Client
	// Log gets the errors the API answers 500 with (default: discarded).
	Log *slog.Logger
}

// Server serves fleet's v1 API (and atoll's journal route) from the
// registry. It is an http.Handler, safe for concurrent use.
type Server struct {
	o          Options
	tokenLimit uint16
	mux        *http.ServeMux
	files      fileCache
}

// NewServer returns the API over o.Registry, with fleet's routes mounted
// under /fleet/v1 and /v1-alpha as fleet mounts them (coreos/fleet:
// api/mux.go).
func NewServer(o Options) *Server {
	if o.Version == "" {
		o.Version = version.Version
	}
	if o.PeerClient == nil {
		o.PeerClient = http.DefaultClient
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	limit := o.TokenLimit
	switch {
	case limit <= 0:
		limit = DefaultTokenLimit
	case limit > 0xffff:
		limit = 0xffff
	}
	s := &Server{o: o, tokenLimit: uint16(limit), mux: http.NewServeMux()}
	for _, prefix := range []string{"/v1-alpha", "/fleet/v1"} {
		s.mux.Handle(path.Join(prefix, "discovery"), http.HandlerFunc(s.discovery))
		s.mux.Handle(path.Join(prefix, "machines"), s.machines())
		state := s.state(path.Join(prefix, "state"))
		s.mux.Handle(path.Join(prefix, "state"), state)
		s.mux.Handle(path.Join(prefix, "state")+"/", state)
		units := s.units(path.Join(prefix, "units"))
		s.mux.Handle(path.Join(prefix, "units"), units)
		s.mux.Handle(path.Join(prefix, "units")+"/", units)
		s.mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			sendError(w, http.StatusMethodNotAllowed, nil)
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			sendError(w, http.StatusMethodNotAllowed, nil)
			return
		}
		sendError(w, http.StatusNotFound, nil)
	})
	return s
}

// ServeHTTP answers one request: 503 while the registry is not
// reachable, as fleet answers before it has reached etcd.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "fleetd/"+s.o.Version)
	reg, err := s.o.Registry(r.Context())
	if err != nil || reg == nil {
		msg := "fleet server unable to communicate with etcd"
		if err != nil {
			msg += ": " + err.Error()
		}
		sendError(w, http.StatusServiceUnavailable, errors.New(msg))
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(withRegistry(r.Context(), reg)))
}

type registryKey struct{}

func withRegistry(ctx context.Context, reg *registry.Registry) context.Context {
	return context.WithValue(ctx, registryKey{}, reg)
}

// registryOf is the registry ServeHTTP found for the request.
func registryOf(r *http.Request) *registry.Registry {
	return r.Context().Value(registryKey{}).(*registry.Registry)
}

// sendResponse writes v as JSON with status code, as fleet's
// sendResponse does (coreos/fleet: api/serialization.go).
func sendResponse(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// errorBody is fleet's errorResponse; its message is omitted from no
// answer, as in fleet, where it is "" when fleet had nothing to say.
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// sendError writes {"error":{"code","message"}}.
func sendError(w http.ResponseWriter, code int, err error) {
	var body errorBody
	body.Error.Code = code
	if err != nil {
		body.Error.Message = err.Error()
	}
	sendResponse(w, code, body)
}

// internalError logs err and answers 500 with it. fleet answered 500
// with an empty message; atoll says what failed.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.o.Log.Error("fleet API", "method", r.Method, "path", r.URL.Path, "err", err)
	sendError(w, http.StatusInternalServerError, err)
}

// validateContentType is fleet's: exactly one Content-Type, and it is
// application/json (parameters aside).
func validateContentType(r *http.Request) error {
	values := r.Header["Content-Type"]
	if len(values) != 1 {
		return fmt.Errorf("expected 1 Content-Type, got %d", len(values))
	}
	val := strings.TrimSpace(strings.SplitN(values[0], ";", 2)[0])
	if val != "application/json" {
		return errors.New("only acceptable Content-Type is application/json")
	}
	return nil
}

// isItemPath reports whether p is base/<item> (coreos/fleet: api/path.go).
func isItemPath(base, p string) (string, bool) {
	if strings.HasSuffix(p, "/") {
		return "", false
	}
	matched, err := path.Match(path.Join(base, "*"), p)
	if err != nil || !matched {
		return "", false
	}
	return path.Base(p), true
}

// fileCache holds what the API shows of each stored unit file, by unit
// name and hash: a file never changes under its hash, so each is parsed
// once.
type fileCache struct {
	mu    sync.Mutex
	files map[fileKey]parsedFile
}

type fileKey struct {
	name string
	hash unit.Hash
}

// parsedFile is what the API needs of a unit file. Its options are
// shared by every answer that shows them, and never changed.
type parsedFile struct {
	options []*schema.UnitOption
	global  bool
}

// maxCachedFiles bounds the cache; past it the cache starts over.
const maxCachedFiles = 8192

func (c *fileCache) get(name string, h unit.Hash, text []byte) (parsedFile, error) {
	k := fileKey{name, h}
	c.mu.Lock()
	pf, ok := c.files[k]
	c.mu.Unlock()
	if ok {
		return pf, nil
	}
	f, err := registry.ParseFile(name, text)
	if err != nil {
		return parsedFile{}, err
	}
	pf.options = schemaOptions(f.Options)
	// A stored file passed Fleet at submit; should it fail now, the unit
	// is shown as fleet would show a unit that is not global.
	if fl, _, err := f.Fleet(); err == nil {
		pf.global = fl.Global
	}
	c.mu.Lock()
	if c.files == nil || len(c.files) >= maxCachedFiles {
		c.files = make(map[fileKey]parsedFile)
	}
	c.files[k] = pf
	c.mu.Unlock()
	return pf, nil
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("unable to read body: %w", err)
	}
	return b, nil
}

// bodyErrorStatus is 413 for a body over its limit, else 400.
func bodyErrorStatus(err error) int {
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
