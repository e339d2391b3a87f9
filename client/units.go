package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"atoll.dev/atoll/api"
)

func unitPath(name string, rest ...string) string {
	p := "/v1/units/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Units lists the machine's units.
func (c Local) Units(ctx context.Context) ([]api.UnitState, error) {
	var list []api.UnitState
	err := c.do(ctx, http.MethodGet, "/v1/units", &list)
	return list, err
}

// Unit reports one unit.
func (c Local) Unit(ctx context.Context, name string) (api.UnitState, error) {
	var st api.UnitState
	err := c.do(ctx, http.MethodGet, unitPath(name), &st)
	return st, err
}

// LoadUnit loads (or replaces) a unit file under name.
func (c Local) LoadUnit(ctx context.Context, name string, content []byte) (api.UnitState, error) {
	var st api.UnitState
	err := c.send(ctx, http.MethodPut, unitPath(name), bytes.NewReader(content), &st)
	return st, err
}

// UnloadUnit forgets a unit that is not running.
func (c Local) UnloadUnit(ctx context.Context, name string) error {
	var none struct{}
	return c.do(ctx, http.MethodDelete, unitPath(name), &none)
}

// UnitAction starts, stops, restarts, reloads, enables or disables a unit
// and returns its state after.
func (c Local) UnitAction(ctx context.Context, name, action string) (api.UnitState, error) {
	var st api.UnitState
	err := c.do(ctx, http.MethodPost, unitPath(name, action), &st)
	return st, err
}

// DaemonReload makes the unit manager reread its unit files, as systemctl
// daemon-reload.
func (c Local) DaemonReload(ctx context.Context) error {
	var none struct{}
	return c.do(ctx, http.MethodPost, "/v1/units/daemon-reload", &none)
}

// UnitFile returns a unit's file as loaded.
func (c Local) UnitFile(ctx context.Context, name string) ([]byte, error) {
	resp, err := c.open(ctx, http.MethodGet, unitPath(name, "file"), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}

// JournalOptions select a unit's journal lines (journalctl -n, --since, -f).
type JournalOptions struct {
	Lines  int
	Since  time.Time
	Follow bool
}

// Journal streams a unit's journal, one journald-style JSON object a line
// (journal.Entry reads them), until the caller closes it or, without
// Follow, the lines asked for are sent.
func (c Local) Journal(ctx context.Context, name string, o JournalOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if o.Lines > 0 {
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.Format(time.RFC3339Nano))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	path := unitPath(name, "journal")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.open(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
