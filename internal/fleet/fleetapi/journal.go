package fleetapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"atoll.dev/atoll/internal/fleet/registry"
	"atoll.dev/atoll/internal/journal"
)

// proxiedHeader marks a journal read one server passed to another, which
// must then serve it from its own journal and never pass it on.
const proxiedHeader = "Atoll-Fleet-Proxied"

// journal is atoll's GET /units/{name}/journal?lines=N&follow=1&machine=ID:
// the unit's journal on the machine it is scheduled on (or the machine
// named), one journald-style JSON object per line, as atoll's local API
// serves it. Units scheduled elsewhere are read through that machine's
// API, streamed as they come.
func (s *Server) journal(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	var o journal.ReadOptions
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			sendError(w, http.StatusBadRequest, fmt.Errorf("lines=%s: want a number of lines", v))
			return
		}
		o.Lines = n
	}
	switch v := q.Get("follow"); v {
	case "", "0", "false":
	case "1", "true":
		o.Follow = true
	default:
		sendError(w, http.StatusBadRequest, fmt.Errorf("follow=%s: want 1 or 0", v))
		return
	}

	snap, err := registryOf(r).UnitSnapshot(r.Context(), name)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if _, ok := snap.Units[name]; !ok {
		sendError(w, http.StatusNotFound, errors.New("unit does not exist"))
		return
	}
	machineID := q.Get("machine")
	if machineID == "" {
		var on []string
		for _, p := range snap.Schedule {
			if p.Unit == name {
				on = append(on, p.Machine)
			}
		}
		switch len(on) {
		case 0:
			sendError(w, http.StatusConflict, fmt.Errorf("unit %s is not scheduled", name))
			return
		case 1:
			machineID = on[0]
		default:
			sendError(w, http.StatusConflict, fmt.Errorf("unit %s runs on %d machines (%s): name one with machine=", name, len(on), strings.Join(on, ", ")))
			return
		}
	}

	if machineID == s.o.MachineID {
		s.localJournal(w, r, name, o)
		return
	}
	if r.Header.Get(proxiedHeader) != "" {
		// The peer thought we were machineID: a registry that names the
		// wrong API address must not make requests go round.
		sendError(w, http.StatusBadGateway, fmt.Errorf("machine %s: journal read was passed to machine %s, which is not it", machineID, s.o.MachineID))
		return
	}
	s.proxyJournal(w, r, name, machineID, snap, o)
}

// localJournal streams this machine's journal of the unit.
func (s *Server) localJournal(w http.ResponseWriter, r *http.Request, name string, o journal.ReadOptions) {
	if s.o.Journal == nil {
		sendError(w, http.StatusNotImplemented, fmt.Errorf("machine %s has no journal to read", s.o.MachineID))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if o.Follow && flusher != nil {
		flusher.Flush() // the client has its answer before the first entry
	}
	var flush func()
	if flusher != nil {
		flush = flusher.Flush
	}
	err := s.o.Journal.Read(r.Context(), name, o, journal.NDJSON(w, flush, o.Follow))
	if err != nil && r.Context().Err() == nil {
		// The status is sent; a broken stream is all the client sees.
		s.o.Log.Warn("fleet API: journal read", "unit", name, "err", err)
	}
}

// proxyJournal passes the read to machineID's API and streams its answer
// back, flushing as it goes; its errors come back as they are.
func (s *Server) proxyJournal(w http.ResponseWriter, r *http.Request, name, machineID string, snap *registry.Snapshot, o journal.ReadOptions) {
	m, ok := snap.Machines[machineID]
	if !ok {
		sendError(w, http.StatusBadGateway, fmt.Errorf("machine %s is not in the cluster (down?)", machineID))
		return
	}
	if m.APIURL == "" {
		sendError(w, http.StatusBadGateway, fmt.Errorf("machine %s serves no API to other machines", machineID))
		return
	}
	q := url.Values{"machine": {machineID}}
	if o.Lines > 0 {
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	target := strings.TrimSuffix(m.APIURL, "/") + "/fleet/v1/" + unitPath(name) + "/journal?" + q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		sendError(w, http.StatusBadGateway, fmt.Errorf("machine %s: API address %q: %w", machineID, m.APIURL, err))
		return
	}
	req.Header.Set(proxiedHeader, "1")
	resp, err := s.o.PeerClient.Do(req)
	if err != nil {
		sendError(w, http.StatusBadGateway, fmt.Errorf("machine %s at %s: %w", machineID, m.APIURL, err))
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if err != io.EOF && r.Context().Err() == nil {
				s.o.Log.Warn("fleet API: proxied journal read", "unit", name, "machine", machineID, "err", err)
			}
			return
		}
	}
}
