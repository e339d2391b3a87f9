package fleetapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/fleet/schema"
)

// metadataPathRegex is fleet's: /<machine>/metadata/<key>.
var metadataPathRegex = regexp.MustCompile("^/([^/]+)/metadata/([A-Za-z0-9_.-]+$)")

// maxPatchBody bounds the body of PATCH /machines.
const maxPatchBody = 1 << 20

// machines serves base: GET lists, PATCH changes metadata
// (coreos/fleet: api/machines.go).
func (s *Server) machines() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			s.listMachines(w, r)
		case http.MethodPatch:
			s.patchMachines(w, r)
		default:
			sendError(w, http.StatusMethodNotAllowed, errors.New("only GET and PATCH supported against this resource"))
		}
	})
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
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
	var page schema.MachinePage
	page.Machines, page.NextPageToken = extractPage(machines(snap), tok)
	sendResponse(w, http.StatusOK, page)
}

// metadataChange is one checked operation of PATCH /machines.
type metadataChange struct {
	remove       bool
	machine, key string
	value        string
}

// parseMetadataPatch reads and checks the body of PATCH /machines as
// fleet does: every operation is checked before any is applied.
func parseMetadataPatch(body []byte) ([]metadataChange, error) {
	var ops []metadataOp
	// fleet decodes the first JSON value and ignores what follows.
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&ops); err != nil {
		return nil, err
	}
	changes := make([]metadataChange, 0, len(ops))
	for _, op := range ops {
		if op.Op != "add" && op.Op != "remove" && op.Op != "replace" {
			return nil, errors.New("invalid op: expect add, remove, or replace")
		}
		m := metadataPathRegex.FindStringSubmatch(op.Path)
		if m == nil {
			return nil, errors.New("machine metadata path invalid")
		}
		if op.Op != "remove" && op.Value.Value == "" {
			return nil, errors.New("invalid value: add and replace require a value")
		}
		changes = append(changes, metadataChange{remove: op.Op == "remove", machine: m[1], key: m[2], value: op.Value.Value})
	}
	return changes, nil
}

// patchMachines applies the operations in order; as in fleet, those
// before a failed one stay applied. Removing a key that is not set is
// not an error (fleet's remove wrote "" whether or not the key was set).
func (s *Server) patchMachines(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxPatchBody)
	if err != nil {
		sendError(w, bodyErrorStatus(err), err)
		return
	}
	changes, err := parseMetadataPatch(body)
	if err != nil {
		sendError(w, http.StatusBadRequest, err)
		return
	}
	reg := registryOf(r)
	for _, c := range changes {
		var err error
		if c.remove {
			err = reg.DeleteMetadata(r.Context(), c.machine, c.key)
			if errors.Is(err, registry.ErrNotFound) {
				err = nil
			}
		} else {
			err = reg.SetMetadata(r.Context(), c.machine, c.key, c.value)
		}
		if err != nil {
			s.internalError(w, r, err)
			return
		}
	}
	sendResponse(w, http.StatusNoContent, nil)
}
