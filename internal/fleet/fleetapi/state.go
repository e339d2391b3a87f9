package fleetapi

import (
	"errors"
	"net/http"

	"atoll.dev/atoll/internal/fleet/schema"
)

// state serves base (the agents' reports, filtered by ?machineID= and
// ?unitName=) and base/{unit} (one report) (coreos/fleet: api/state.go).
func (s *Server) state(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		item, isItem := isItemPath(base, r.URL.Path)
		if r.URL.Path != base && !isItem {
			sendError(w, http.StatusNotFound, nil)
			return
		}
		if r.Method != http.MethodGet {
			sendError(w, http.StatusMethodNotAllowed, errors.New("only GET supported against this resource"))
			return
		}
		if isItem {
			s.getState(w, r, item)
			return
		}
		s.listStates(w, r)
	})
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	tok, err := findPageToken(r.URL, s.tokenLimit)
	if err != nil {
		sendError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	snap, err := registryOf(r).Snapshot(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var page schema.UnitStatePage
	page.States, page.NextPageToken = extractPage(unitStates(snap, q.Get("machineID"), q.Get("unitName")), tok)
	sendResponse(w, http.StatusOK, page)
}

// getState is fleet's undocumented GET /state/{unit}: fleet read a legacy
// one-per-unit copy of the last report; atoll gives the report of the
// first machine (by ID) that runs the unit.
func (s *Server) getState(w http.ResponseWriter, r *http.Request, name string) {
	snap, err := registryOf(r).UnitSnapshot(r.Context(), name)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	states := unitStates(snap, "", name)
	if len(states) == 0 {
		sendError(w, http.StatusNotFound, errors.New("unit state does not exist"))
		return
	}
	sendResponse(w, http.StatusOK, states[0])
}
