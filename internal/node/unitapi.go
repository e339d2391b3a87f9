package node

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"atoll.dev/atoll/api"
	"atoll.dev/atoll/internal/journal"
	"atoll.dev/atoll/internal/service"
	"atoll.dev/atoll/internal/service/builtin"
	"atoll.dev/atoll/internal/unit"
)

// maxUnitFile bounds a unit file sent to the API.
const maxUnitFile = 1 << 20

// unitRoutes serves the unit manager and the journal:
//
//	GET    /v1/units                   the units, as systemctl list-units
//	PUT    /v1/units/{name}            load a unit file (the body)
//	DELETE /v1/units/{name}            unload it
//	GET    /v1/units/{name}            its state
//	GET    /v1/units/{name}/file       the file as loaded
//	POST   /v1/units/daemon-reload     reread the unit files
//	POST   /v1/units/{name}/{action}   start, stop, restart, reload, enable, disable
//	GET    /v1/units/{name}/journal    ?lines=N&since=RFC3339&follow=1: one
//	                                   journald-style JSON object per line
func (p *apiPart) unitRoutes(mux *http.ServeMux) {
	m := p.sys.units.manager
	mux.HandleFunc("GET /v1/units", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.List(r.Context())
		if err != nil {
			unitError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("PUT /v1/units/{name}", func(w http.ResponseWriter, r *http.Request) {
		content, err := io.ReadAll(io.LimitReader(r.Body, maxUnitFile+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: err.Error()})
			return
		}
		if len(content) > maxUnitFile {
			writeJSON(w, http.StatusRequestEntityTooLarge, api.Error{Error: "unit file over 1 MiB"})
			return
		}
		if err := m.Load(r.Context(), r.PathValue("name"), content); err != nil {
			unitError(w, err)
			return
		}
		p.writeUnitState(w, r)
	})
	mux.HandleFunc("DELETE /v1/units/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Unload(r.Context(), r.PathValue("name")); err != nil {
			unitError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /v1/units/{name}", p.writeUnitState)
	mux.HandleFunc("POST /v1/units/daemon-reload", func(w http.ResponseWriter, r *http.Request) {
		if err := m.DaemonReload(r.Context()); err != nil {
			unitError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /v1/units/{name}/file", func(w http.ResponseWriter, r *http.Request) {
		content, err := m.Cat(r.Context(), r.PathValue("name"))
		if err != nil {
			unitError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(content)
	})
	mux.HandleFunc("POST /v1/units/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		actions := map[string]func(*http.Request, string) error{
			"start":   func(r *http.Request, n string) error { return m.Start(r.Context(), n) },
			"stop":    func(r *http.Request, n string) error { return m.Stop(r.Context(), n) },
			"restart": func(r *http.Request, n string) error { return m.Restart(r.Context(), n) },
			"reload":  func(r *http.Request, n string) error { return m.Reload(r.Context(), n) },
			"enable":  func(r *http.Request, n string) error { return m.Enable(r.Context(), n) },
			"disable": func(r *http.Request, n string) error { return m.Disable(r.Context(), n) },
		}
		act, ok := actions[r.PathValue("action")]
		if !ok {
			writeJSON(w, http.StatusNotFound, api.Error{Error: "unknown action " + strconv.Quote(r.PathValue("action"))})
			return
		}
		if err := act(r, r.PathValue("name")); err != nil {
			unitError(w, err)
			return
		}
		p.writeUnitState(w, r)
	})
	mux.HandleFunc("GET /v1/units/{name}/journal", func(w http.ResponseWriter, r *http.Request) {
		var o journal.ReadOptions
		q := r.URL.Query()
		if s := q.Get("lines"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, api.Error{Error: "lines=" + s + ": want a number of lines"})
				return
			}
			o.Lines = n
		}
		if s := q.Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, api.Error{Error: "since=" + s + ": want an RFC 3339 time"})
				return
			}
			o.Since = t
		}
		o.Follow = q.Get("follow") == "1"
		w.Header().Set("Content-Type", "application/x-ndjson")
		var flush func()
		if flusher, ok := w.(http.Flusher); ok {
			flush = flusher.Flush
		}
		err := p.sys.units.journal.Read(r.Context(), r.PathValue("name"), o, journal.NDJSON(w, flush, o.Follow))
		if err != nil && r.Context().Err() == nil {
			// The status is sent; a broken stream is all the client sees.
			p.sys.log.Warn("journal read", "unit", r.PathValue("name"), "err", err)
		}
	})
}

func (p *apiPart) writeUnitState(w http.ResponseWriter, r *http.Request) {
	st, err := p.sys.units.manager.State(r.Context(), r.PathValue("name"))
	if err != nil {
		unitError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// unitError answers with the manager's error, its kind in the status.
func unitError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var syntax *unit.SyntaxError
	switch {
	case errors.As(err, &syntax), errors.Is(err, builtin.ErrBadSetting), errors.Is(err, unit.ErrInvalidName):
		status = http.StatusBadRequest
	case errors.Is(err, service.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, service.ErrTemplate), errors.Is(err, service.ErrRunning):
		status = http.StatusConflict
	case errors.Is(err, service.ErrFailed):
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, api.Error{Error: err.Error()})
}
