package discovery

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"atoll.dev/atoll/internal/fsutil"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// DataDir holds one <token>.json file per token. Required; it is created
	// if missing.
	DataDir string
	// PublicURL is the base of the token URLs handed out, such as
	// "https://discovery.example.com" or "http://10.0.0.1:7001/discovery".
	// Empty means the scheme and Host of each /new request.
	PublicURL string
	// Logger receives one line per token created, registration and removal.
	// Nil discards.
	Logger *slog.Logger
}

// Server serves the discovery protocol described in the package comment. It
// is safe for concurrent use; all its state is in memory and in DataDir.
type Server struct {
	dataDir   string
	publicURL string // without a trailing slash; empty: from the request
	log       *slog.Logger

	mu     sync.Mutex
	tokens map[string]*token // by token; tokens are never removed
}

// token is the state of one token. Entries are never modified once stored,
// so a snapshot may share them.
type token struct {
	created time.Time
	size    int
	members []Entry
	clients []Entry
	changed chan struct{} // closed and replaced on every change
}

// tokenFile is the on-disk form of a token, <DataDir>/<token>.json.
type tokenFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Size    int       `json:"size"`
	Members []Entry   `json:"members"`
	Clients []Entry   `json:"clients"`
}

const tokenFileVersion = 1

// refusal is an error whose message is meant for the requester; its kind
// (ErrInvalid, ErrNotFound, ErrConflict) decides the HTTP status.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// NewServer returns a Server over opts.DataDir with every token found there
// loaded. A token file that cannot be read or decoded, or holds an invalid
// token, is an error naming the file. Other files in DataDir are ignored.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("new discovery server: data dir is empty")
	}
	publicURL := strings.TrimSuffix(opts.PublicURL, "/")
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("new discovery server: public URL %q: want http(s)://host[:port][/path]", opts.PublicURL)
		}
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("new discovery server: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		dataDir:   opts.DataDir,
		publicURL: publicURL,
		log:       logger,
		tokens:    make(map[string]*token),
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("new discovery server: %w", err)
	}
	return s, nil
}

// load reads every <token>.json in the data dir.
func (s *Server) load() error {
	dirEntries, err := os.ReadDir(s.dataDir)
	if err != nil {
		return err
	}
	for _, de := range dirEntries {
		name := de.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || !validToken(id) || de.IsDir() {
			continue
		}
		path := filepath.Join(s.dataDir, name)
		tok, err := loadToken(path)
		if err != nil {
			return fmt.Errorf("load token file %s: %w", path, err)
		}
		s.tokens[id] = tok
	}
	s.log.Info("discovery tokens loaded", "dir", s.dataDir, "tokens", len(s.tokens))
	return nil
}

// loadToken reads and checks one token file.
func loadToken(path string) (*token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f tokenFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if f.Version != tokenFileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, tokenFileVersion)
	}
	if f.Size < minSize || f.Size > maxSize {
		return nil, fmt.Errorf("size %d, want %d..%d", f.Size, minSize, maxSize)
	}
	if len(f.Members) > f.Size {
		return nil, fmt.Errorf("%d members, more than size %d", len(f.Members), f.Size)
	}
	if n := len(f.Members) + len(f.Clients); n > maxRegistrations {
		return nil, fmt.Errorf("%d registrations, more than %d", n, maxRegistrations)
	}
	machineIDs := make(map[string]bool)
	names := make(map[string]bool)
	for i, e := range slices.Concat(f.Members, f.Clients) {
		if err := checkMachineID(e.MachineID); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if err := checkRegistration(e.Registration); err != nil {
			return nil, fmt.Errorf("machine %s: %w", e.MachineID, err)
		}
		if i < len(f.Members) && len(e.PeerURLs) == 0 {
			return nil, fmt.Errorf("member %s: no peer URLs", e.MachineID)
		}
		if machineIDs[e.MachineID] {
			return nil, fmt.Errorf("machine %s registered twice", e.MachineID)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("name %q registered twice", e.Name)
		}
		machineIDs[e.MachineID] = true
		names[e.Name] = true
	}
	tok := &token{created: f.Created, size: f.Size, changed: make(chan struct{})}
	for _, e := range f.Members {
		tok.members = append(tok.members, Entry{MachineID: e.MachineID, Registration: e.Registration.normalize()})
	}
	for _, e := range f.Clients {
		tok.clients = append(tok.clients, Entry{MachineID: e.MachineID, Registration: e.Registration.normalize()})
	}
	return tok, nil
}

// persist writes tok to its file. The caller holds s.mu.
func (s *Server) persist(id string, tok *token) error {
	data, err := json.MarshalIndent(tokenFile{
		Version: tokenFileVersion,
		Created: tok.created,
		Size:    tok.size,
		Members: nonNil(tok.members),
		Clients: nonNil(tok.clients),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("store token %s: %w", id, err)
	}
	path := filepath.Join(s.dataDir, id+".json")
	if err := fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("store token %s: %w", id, err)
	}
	return nil
}

// notify wakes every long poll on tok. The caller holds s.mu.
func (tok *token) notify() {
	close(tok.changed)
	tok.changed = make(chan struct{})
}

// snapshot copies the state of tok. The caller holds s.mu.
func (tok *token) snapshot() State {
	return State{Size: tok.size, Members: nonNil(slices.Clone(tok.members)), Clients: nonNil(slices.Clone(tok.clients))}
}

func nonNil(entries []Entry) []Entry {
	if entries == nil {
		return []Entry{}
	}
	return entries
}

// find returns the entry registered under machineID, its role and its index
// in the list of that role.
func (tok *token) find(machineID string) (Entry, string, int, bool) {
	if i := slices.IndexFunc(tok.members, func(e Entry) bool { return e.MachineID == machineID }); i >= 0 {
		return tok.members[i], RoleMember, i, true
	}
	if i := slices.IndexFunc(tok.clients, func(e Entry) bool { return e.MachineID == machineID }); i >= 0 {
		return tok.clients[i], RoleClient, i, true
	}
	return Entry{}, "", 0, false
}

// newToken creates and stores a token for a cluster of size members.
func (s *Server) newToken(size int) (string, error) {
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	tok := &token{created: time.Now().UTC(), size: size, changed: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.persist(id, tok); err != nil {
		return "", err
	}
	s.tokens[id] = tok
	s.log.Info("discovery token created", "token", id, "size", size)
	return id, nil
}

// state returns a snapshot of token id and the channel closed on its next
// change.
func (s *Server) state(id string) (State, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.tokens[id]
	if !ok {
		return State{}, nil, refuse(ErrNotFound, "unknown token %q", truncate(id))
	}
	return tok.snapshot(), tok.changed, nil
}

// register records reg under machineID and returns the role it got, and
// whether it is new. A machine that registers again with the same name and
// URLs gets its original answer.
func (s *Server) register(id, machineID string, reg Registration) (Assignment, bool, error) {
	if err := checkMachineID(machineID); err != nil {
		return Assignment{}, false, refuse(ErrInvalid, "%v", err)
	}
	if err := checkRegistration(reg); err != nil {
		return Assignment{}, false, refuse(ErrInvalid, "%v", err)
	}
	reg = reg.normalize()

	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.tokens[id]
	if !ok {
		return Assignment{}, false, refuse(ErrNotFound, "unknown token %q", truncate(id))
	}
	if old, role, _, ok := tok.find(machineID); ok {
		if !sameRegistration(old.Registration, reg) {
			return Assignment{}, false, refuse(ErrConflict,
				"machine %s is already registered as %s %q with other name or URLs; deregister it first",
				machineID, role, old.Name)
		}
		return Assignment{Role: role, Size: tok.size}, false, nil
	}
	for _, e := range slices.Concat(tok.members, tok.clients) {
		if e.Name == reg.Name {
			return Assignment{}, false, refuse(ErrConflict, "name %q is already registered by machine %s", reg.Name, e.MachineID)
		}
	}
	if n := len(tok.members) + len(tok.clients); n >= maxRegistrations {
		return Assignment{}, false, refuse(ErrConflict, "token %s already holds %d registrations, the most it takes", id, n)
	}
	role := RoleClient
	if len(tok.members) < tok.size {
		role = RoleMember
	}
	if role == RoleMember {
		if len(reg.PeerURLs) == 0 {
			return Assignment{}, false, refuse(ErrInvalid,
				"invalid peerURLs: machine %s would be member %d of %d and needs at least one peer URL",
				machineID, len(tok.members)+1, tok.size)
		}
		for _, m := range tok.members {
			for _, peerURL := range reg.PeerURLs {
				if slices.Contains(m.PeerURLs, peerURL) {
					return Assignment{}, false, refuse(ErrConflict, "peer URL %q is already registered by member %s (%s)", peerURL, m.Name, m.MachineID)
				}
			}
		}
	}

	entry := Entry{MachineID: machineID, Registration: reg}
	if role == RoleMember {
		tok.members = append(tok.members, entry)
	} else {
		tok.clients = append(tok.clients, entry)
	}
	if err := s.persist(id, tok); err != nil {
		if role == RoleMember {
			tok.members = tok.members[:len(tok.members)-1]
		} else {
			tok.clients = tok.clients[:len(tok.clients)-1]
		}
		return Assignment{}, false, err
	}
	tok.notify()
	s.log.Info("discovery registration", "token", id, "machine", machineID, "name", reg.Name, "role", role,
		"members", len(tok.members), "size", tok.size)
	return Assignment{Role: role, Size: tok.size}, true, nil
}

// deregister removes the registration of machineID.
func (s *Server) deregister(id, machineID string) error {
	if err := checkMachineID(machineID); err != nil {
		return refuse(ErrInvalid, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.tokens[id]
	if !ok {
		return refuse(ErrNotFound, "unknown token %q", truncate(id))
	}
	_, role, i, ok := tok.find(machineID)
	if !ok {
		return refuse(ErrNotFound, "machine %s is not registered under token %s", machineID, id)
	}
	list := &tok.clients
	if role == RoleMember {
		list = &tok.members
	}
	old := *list
	*list = slices.Concat(old[:i], old[i+1:])
	if err := s.persist(id, tok); err != nil {
		*list = old
		return err
	}
	tok.notify()
	s.log.Info("discovery deregistration", "token", id, "machine", machineID, "role", role)
	return nil
}

// ServeHTTP answers the discovery protocol described in the package comment.
// A long poll (GET /<token>?wait=true) blocks until the member list is full,
// its timeout passes or the request's context is done, and answers with the
// state at that moment in every case.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	id, machineID, hasMachine := strings.Cut(path, "/")
	switch {
	case path == "new":
		s.serveNew(w, r)
	case id == "" || strings.Contains(machineID, "/"):
		s.writeError(w, r, refuse(ErrNotFound, "no such path %q", truncate(r.URL.Path)))
	case !hasMachine:
		s.serveToken(w, r, id)
	default:
		s.serveMachine(w, r, id, machineID)
	}
}

func (s *Server) serveNew(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.methodNotAllowed(w, r, "GET, POST")
		return
	}
	size := defaultSize
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minSize || n > maxSize {
			s.writeError(w, r, refuse(ErrInvalid, "invalid size %q: want an integer from %d to %d", truncate(v), minSize, maxSize))
			return
		}
		size = n
	}
	base, err := s.baseURL(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := s.newToken(size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tokenURL := base + "/" + id
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Location", tokenURL)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, tokenURL+"\n")
}

// baseURL is the configured public URL, or else the scheme and Host of r.
func (s *Server) baseURL(r *http.Request) (string, error) {
	if s.publicURL != "" {
		return s.publicURL, nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if r.Host == "" {
		return "", refuse(ErrInvalid, "invalid Host: the request has none and the server has no public URL")
	}
	u, err := url.Parse(scheme + "://" + r.Host)
	if err != nil || u.Host != r.Host || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", refuse(ErrInvalid, "invalid Host %q", truncate(r.Host))
	}
	return scheme + "://" + r.Host, nil
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		s.methodNotAllowed(w, r, "GET")
		return
	}
	query := r.URL.Query()
	wait := false
	if v := query.Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, refuse(ErrInvalid, "invalid wait %q: want true or false", truncate(v)))
			return
		}
		wait = b
	}
	timeout := defaultPollTimeout
	if v := query.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			s.writeError(w, r, refuse(ErrInvalid, "invalid timeout %q: want a positive duration such as 30s", truncate(v)))
			return
		}
		timeout = min(d, maxPollTimeout)
	}

	st, changed, err := s.state(id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var timer <-chan time.Time
	if wait && !st.Full() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for wait && !st.Full() {
		select {
		case <-changed:
		case <-timer:
			wait = false
		case <-r.Context().Done():
			wait = false
		}
		if st, changed, err = s.state(id); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) serveMachine(w http.ResponseWriter, r *http.Request, id, machineID string) {
	switch r.Method {
	case http.MethodPut:
	case http.MethodDelete:
	default:
		s.methodNotAllowed(w, r, "PUT, DELETE")
		return
	}
	if _, _, err := s.state(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodDelete {
		if err := s.deregister(id, machineID); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := checkMachineID(machineID); err != nil {
		s.writeError(w, r, refuse(ErrInvalid, "%v", err))
		return
	}
	reg, err := readRegistration(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	assignment, created, err := s.register(id, machineID, reg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, assignment)
}

// readRegistration decodes a request body of at most 64 KiB holding exactly
// one JSON registration with no unknown fields.
func readRegistration(w http.ResponseWriter, r *http.Request) (Registration, error) {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return Registration{}, refuse(ErrInvalid, "invalid body: larger than %d bytes", maxBodyBytes)
			}
			return Registration{}, refuse(ErrInvalid, "invalid body: %v", err)
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Registration{}, refuse(ErrInvalid, `invalid body: empty, want {"name":...,"peerURLs":[...],"clientURLs":[...]}`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var reg Registration
	if err := dec.Decode(&reg); err != nil {
		return Registration{}, refuse(ErrInvalid, "invalid body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Registration{}, refuse(ErrInvalid, "invalid body: data after the registration")
	}
	return reg, nil
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s not allowed on %s, want %s",
		truncate(r.Method), truncate(r.URL.Path), allow)})
}

// errorBody is the JSON form of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers with the status err's kind calls for. An error that is
// not a refusal is the server's own failure: it is logged and answered
// with 500 and no detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("discovery request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = fmt.Sprintf("%s %s: internal error, see the discovery server's log", truncate(r.Method), truncate(r.URL.Path))
	}
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded here, and they always encode.
		status, data = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
