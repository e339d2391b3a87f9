package fleetapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
	"atoll.dev/atoll/internal/unit"
)

// maxUnitBody bounds the body of PUT /units/{name}, and maxUnitFile the
// unit file it makes: the registry stores a file as one etcd value, and
// etcd refuses requests over 1.5 MiB.
const (
	maxUnitBody = 4 << 20
	maxUnitFile = 1 << 20
)

// units serves base (the list) and base/{name} (one unit), and atoll's
// base/{name}/journal; anything else under base is 404, as in fleet
// (coreos/fleet: api/units.go).
func (s *Server) units(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == base {
			if r.Method != http.MethodGet {
				sendError(w, http.StatusMethodNotAllowed, errors.New("only GET supported against this resource"))
				return
			}
			s.listUnits(w, r)
			return
		}
		if name, ok := isItemPath(base, r.URL.Path); ok {
			switch r.Method {
			case http.MethodGet:
				s.getUnit(w, r, name)
			case http.MethodDelete:
				s.destroyUnit(w, r, name)
			case http.MethodPut:
				s.setUnit(w, r, name)
			default:
				sendError(w, http.StatusMethodNotAllowed, errors.New("only GET, PUT and DELETE supported against this resource"))
			}
			return
		}
		if name, ok := isItemPath(base, strings.TrimSuffix(r.URL.Path, "/journal")); ok && strings.HasSuffix(r.URL.Path, "/journal") {
			if r.Method != http.MethodGet {
				sendError(w, http.StatusMethodNotAllowed, errors.New("only GET supported against this resource"))
				return
			}
			s.journal(w, r, name)
			return
		}
		sendError(w, http.StatusNotFound, nil)
	})
}

// snapshotUnits is every unit of snap, sorted by name, as the API shows
// them.
func (s *Server) snapshotUnits(snap *registry.Snapshot) []*schema.Unit {
	names := make([]string, 0, len(snap.Units))
	for name := range snap.Units {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*schema.Unit, 0, len(names))
	for _, name := range names {
		out = append(out, s.showUnit(snap, snap.Units[name]))
	}
	return out
}

// showUnit is one unit as the API shows it: deriveUnit and its file's
// options. A file that is missing or unreadable (the registry stores it
// with the unit, so it should never be) shows no options.
func (s *Server) showUnit(snap *registry.Snapshot, u registry.Unit) *schema.Unit {
	var pf parsedFile
	if text, ok := snap.Files[u.Hash]; ok {
		var err error
		if pf, err = s.files.get(u.Name, u.Hash, text); err != nil {
			s.o.Log.Warn("fleet API: stored unit file unreadable", "unit", u.Name, "hash", u.Hash.String(), "err", err)
		}
	} else {
		s.o.Log.Warn("fleet API: stored unit file missing", "unit", u.Name, "hash", u.Hash.String())
	}
	su := deriveUnit(snap, u, pf.global)
	su.Options = pf.options
	return su
}

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) {
	tok, err := findPageToken(r.URL, s.tokenLimit)
	if err != nil {
		sendError(w, http.StatusBadRequest, err)
		return
	}
	snap, err := registryOf(r).Snapshot(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var page schema.UnitPage
	page.Units, page.NextPageToken = extractPage(s.snapshotUnits(snap), tok)
	sendResponse(w, http.StatusOK, page)
}

func (s *Server) getUnit(w http.ResponseWriter, r *http.Request, name string) {
	snap, err := registryOf(r).UnitSnapshot(r.Context(), name)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	u, ok := snap.Units[name]
	if !ok {
		sendError(w, http.StatusNotFound, errors.New("unit does not exist"))
		return
	}
	sendResponse(w, http.StatusOK, s.showUnit(snap, u))
}

func (s *Server) destroyUnit(w http.ResponseWriter, r *http.Request, name string) {
	err := registryOf(r).Destroy(r.Context(), name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		sendError(w, http.StatusNotFound, errors.New("unit does not exist"))
	case err != nil:
		s.internalError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// setUnit is PUT /units/{name}, in fleet's order of checks (coreos/fleet:
// api/units.go set): a unit that does not exist is created from its
// options; one whose options differ is replaced (a new file, the desired
// state given or inactive); otherwise only the desired state changes.
func (s *Server) setUnit(w http.ResponseWriter, r *http.Request, name string) {
	if err := validateContentType(r); err != nil {
		sendError(w, http.StatusUnsupportedMediaType, err)
		return
	}
	var su schema.Unit
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUnitBody)).Decode(&su); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			sendError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("unable to decode body: over %d bytes", tooBig.Limit))
			return
		}
		sendError(w, http.StatusBadRequest, fmt.Errorf("unable to decode body: %w", err))
		return
	}
	if su.Name == "" {
		su.Name = name
	}
	if su.Name != name {
		sendError(w, http.StatusBadRequest, fmt.Errorf("name in URL %q differs from unit name in request body %q", name, su.Name))
		return
	}
	if err := ValidateName(name); err != nil {
		sendError(w, http.StatusBadRequest, err)
		return
	}

	reg := registryOf(r)
	existing, err := reg.Unit(r.Context(), name)
	exists := err == nil
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}

	var file *unit.File
	if len(su.Options) > 0 {
		if file, err = validateOptions(name, su.Options); err != nil {
			sendError(w, http.StatusBadRequest, err)
			return
		}
		if n := len(file.Bytes()); n > maxUnitFile {
			sendError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("unit file of %d bytes: over %d", n, maxUnitFile))
			return
		}
	}
	switch {
	case !exists && file == nil:
		sendError(w, http.StatusConflict, errors.New("unit does not exist and options field empty"))
		return
	case !exists, file != nil && file.Hash() != existing.Hash:
		// New, or a new version of the unit.
		desired := registry.Inactive
		if su.DesiredState != "" {
			if desired, err = parseDesiredState(name, su.DesiredState); err != nil {
				sendError(w, http.StatusBadRequest, err)
				return
			}
		}
		if err := reg.Submit(r.Context(), file, desired); err != nil {
			s.internalError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
		return
	}

	if su.DesiredState == "" {
		sendError(w, http.StatusConflict, errors.New("must provide DesiredState to update existing unit"))
		return
	}
	desired, err := parseDesiredState(name, su.DesiredState)
	if err != nil {
		sendError(w, http.StatusBadRequest, err)
		return
	}
	err = reg.SetDesiredState(r.Context(), name, desired)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		sendError(w, http.StatusNotFound, errors.New("unit does not exist"))
	case err != nil:
		s.internalError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// parseDesiredState reads a desired state and refuses to activate a
// template (fleet: "cannot activate template").
func parseDesiredState(name, s string) (registry.DesiredState, error) {
	switch d := registry.DesiredState(s); d {
	case registry.Inactive:
		return d, nil
	case registry.Loaded, registry.Launched:
		if isTemplate(name) {
			return "", fmt.Errorf("cannot activate template %q", name)
		}
		return d, nil
	}
	return "", fmt.Errorf("invalid value %q for desiredState: want inactive, loaded or launched", s)
}

// isTemplate reports whether name is a template, foo@.service, as
// fleet's UnitNameInfo.IsTemplate does.
func isTemplate(name string) bool {
	at := strings.Index(name, "@")
	dot := strings.LastIndex(name, ".")
	return at >= 0 && at+1 == dot
}

// validateOptions builds the unit file of name from the request's options
// with atoll's parser, which checks what fleet's ValidateOptions checks:
// every option survives being written to a unit file, and the [X-Fleet]
// section is not one of the invalid combinations (unit.ErrInvalidFleet).
func validateOptions(name string, opts []*schema.UnitOption) (*unit.File, error) {
	f, _, err := unit.FromOptions(name, unitOptions(opts))
	if err != nil {
		return nil, err
	}
	if _, _, err := f.Fleet(); err != nil {
		return nil, err
	}
	return f, nil
}

// These are systemd's (unit_name_is_valid in unit-name.c), by way of
// fleet's ValidateName.
const (
	unitNameMax = 256
	validChars  = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + `:-_.\@`
)

var (
	validUnitTypes = map[string]bool{
		"automount": true, "busname": true, "device": true, "mount": true,
		"path": true, "scope": true, "service": true, "slice": true,
		"snapshot": true, "socket": true, "swap": true, "target": true,
		"timer": true,
	}
	validTemplateTypes = map[string]bool{
		"path": true, "service": true, "socket": true, "target": true, "timer": true,
	}
)

// ValidateName reports whether name is a unit name fleet's API accepts,
// with the first problem found, in fleet's words (coreos/fleet:
// api/units.go ValidateName).
func ValidateName(name string) error {
	length := len(name)
	if length == 0 {
		return errors.New("unit name cannot be empty")
	}
	if length > unitNameMax {
		return fmt.Errorf("unit name exceeds maximum length (%d)", unitNameMax)
	}
	dot := strings.LastIndex(name, ".")
	if dot == -1 {
		return errors.New(`unit name must contain "."`)
	}
	if dot == length-1 {
		return errors.New(`unit name cannot end in "."`)
	}
	suffix := name[dot+1:]
	if !validUnitTypes[suffix] {
		return fmt.Errorf("invalid unit type: %q", suffix)
	}
	if strings.Contains(name, "@") && !validTemplateTypes[suffix] {
		return fmt.Errorf("invalid unit type for template: %q", suffix)
	}
	for _, char := range name[:dot] {
		if !strings.ContainsRune(validChars, char) {
			return fmt.Errorf("invalid character %q in unit name", char)
		}
	}
	if strings.HasPrefix(name, "@") {
		return errors.New(`unit name cannot start in "@"`)
	}
	return nil
}
