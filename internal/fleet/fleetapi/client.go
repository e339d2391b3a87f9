package fleetapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"atoll.dev/atoll/internal/fleet/schema"
)

// ErrNotFound is wrapped by the Client's errors for a 404: the unit (or
// route) does not exist.
var ErrNotFound = errors.New("fleet: not found")

// Error is a non-2xx answer of the fleet API, with the message of its
// {"error":{"code","message"}} body (or the status text when the body
// has none).
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("fleet API: %d: %s", e.Code, msg)
}

// Unwrap gives ErrNotFound for a 404.
func (e *Error) Unwrap() error {
	if e.Code == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// Client calls a fleet v1 API: atoll's or a real fleetd's. Make one with
// NewClient; it is safe for concurrent use. Every call takes a ctx that
// bounds it, including the reading of a streamed journal.
type Client struct {
	// base is the scheme and host of every request (http://unix for a
	// unix socket), with the endpoint's path prefix, no trailing slash.
	base string
	hc   *http.Client
}

// NewClient returns a Client for an endpoint in one of fleetctl's
// --endpoint forms: unix:///path/to.sock, http://host:port or
// https://host:port (a path after the host is kept as a prefix).
// tlsConfig is used for https and may be nil there (system roots); it is
// ignored for the other forms.
func NewClient(endpoint string, tlsConfig *tls.Config) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("fleet endpoint %q: %w", endpoint, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	c := &Client{hc: &http.Client{Transport: tr}}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Host + u.Opaque
		}
		if sock == "" {
			return nil, fmt.Errorf("fleet endpoint %q: no socket path", endpoint)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		c.base = "http://unix"
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("fleet endpoint %q: no host", endpoint)
		}
		if u.Scheme == "https" && tlsConfig != nil {
			tr.TLSClientConfig = tlsConfig.Clone()
		}
		c.base = u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	default:
		return nil, fmt.Errorf("fleet endpoint %q: scheme must be unix, http or https", endpoint)
	}
	return c, nil
}

// do sends one request to /fleet/v1/<path> and decodes a JSON answer
// into out (when out is non-nil and the answer has a body). Non-2xx
// answers become *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("fleet API: %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// send is do without decoding: the caller owns a 2xx response's body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("fleet API: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	// alt=json on every request, as fleetctl's generated client sends it,
	// so that its URLs (and the errors that quote them) read the same.
	q := url.Values{"alt": {"json"}}
	for k, v := range query {
		q[k] = v
	}
	target := c.base + "/fleet/v1/" + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("fleet API: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // a *url.Error, which names the method and URL, as fleetctl's do
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Code: resp.StatusCode}
	var body schema.Error
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		e.Message = body.Error.Message
	} else if s := strings.TrimSpace(string(b)); s != "" && !strings.HasPrefix(s, "{") {
		e.Message = s
	}
	return e
}

// unitPath is the path of one unit, its name escaped as one segment.
func unitPath(name string) string { return "units/" + url.PathEscape(name) }

// Units lists every unit, following nextPageToken to the last page.
func (c *Client) Units(ctx context.Context) ([]*schema.Unit, error) {
	var all []*schema.Unit
	token := ""
	for {
		var page schema.UnitPage
		if err := c.do(ctx, http.MethodGet, "units", pageQuery(nil, token), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Units...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// Unit reads one unit; a unit that does not exist is an error wrapping
// ErrNotFound.
func (c *Client) Unit(ctx context.Context, name string) (*schema.Unit, error) {
	var u schema.Unit
	if err := c.do(ctx, http.MethodGet, unitPath(name), nil, nil, &u); err != nil {
		return nil, fmt.Errorf("unit %q: %w", name, err)
	}
	return &u, nil
}

// CreateUnit PUTs a unit's name, options and desired state: it creates
// the unit, replaces its file when the options differ, or only sets its
// desired state when they are the same.
func (c *Client) CreateUnit(ctx context.Context, u *schema.Unit) error {
	body := schema.Unit{Name: u.Name, Options: u.Options, DesiredState: u.DesiredState}
	if err := c.do(ctx, http.MethodPut, unitPath(u.Name), nil, body, nil); err != nil {
		return fmt.Errorf("unit %q: %w", u.Name, err)
	}
	return nil
}

// SetUnitTargetState sets the desired state of an existing unit
// (inactive, loaded or launched).
func (c *Client) SetUnitTargetState(ctx context.Context, name, desiredState string) error {
	body := schema.Unit{Name: name, DesiredState: desiredState}
	if err := c.do(ctx, http.MethodPut, unitPath(name), nil, body, nil); err != nil {
		return fmt.Errorf("unit %q: %w", name, err)
	}
	return nil
}

// DestroyUnit deletes a unit; one that does not exist is an error
// wrapping ErrNotFound.
func (c *Client) DestroyUnit(ctx context.Context, name string) error {
	if err := c.do(ctx, http.MethodDelete, unitPath(name), nil, nil, nil); err != nil {
		return fmt.Errorf("unit %q: %w", name, err)
	}
	return nil
}

// UnitStates lists what the agents report, filtered by machine and unit
// when those are not empty, following nextPageToken.
func (c *Client) UnitStates(ctx context.Context, machineID, unitName string) ([]*schema.UnitState, error) {
	filter := url.Values{}
	if machineID != "" {
		filter.Set("machineID", machineID)
	}
	if unitName != "" {
		filter.Set("unitName", unitName)
	}
	var all []*schema.UnitState
	token := ""
	for {
		var page schema.UnitStatePage
		if err := c.do(ctx, http.MethodGet, "state", pageQuery(filter, token), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.States...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// Machines lists the live machines, following nextPageToken.
func (c *Client) Machines(ctx context.Context) ([]*schema.Machine, error) {
	var all []*schema.Machine
	token := ""
	for {
		var page schema.MachinePage
		if err := c.do(ctx, http.MethodGet, "machines", pageQuery(nil, token), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Machines...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// SetMachineMetadata sets one metadata key of a machine, over what the
// machine registered with.
func (c *Client) SetMachineMetadata(ctx context.Context, machineID, key, value string) error {
	op := metadataOp{Op: "add", Path: metadataPath(machineID, key)}
	op.Value.Value = value
	if err := c.do(ctx, http.MethodPatch, "machines", nil, []metadataOp{op}, nil); err != nil {
		return fmt.Errorf("machine %q metadata %q: %w", machineID, key, err)
	}
	return nil
}

// DeleteMachineMetadata deletes one operator metadata key of a machine.
func (c *Client) DeleteMachineMetadata(ctx context.Context, machineID, key string) error {
	op := metadataOp{Op: "remove", Path: metadataPath(machineID, key)}
	if err := c.do(ctx, http.MethodPatch, "machines", nil, []metadataOp{op}, nil); err != nil {
		return fmt.Errorf("machine %q metadata %q: %w", machineID, key, err)
	}
	return nil
}

func metadataPath(machineID, key string) string {
	return "/" + machineID + "/metadata/" + key
}

// JournalOptions selects what Journal streams.
type JournalOptions struct {
	// Lines is how many of the last entries to send first; 0 means the
	// server's default.
	Lines int
	// Follow keeps the stream open, sending entries as they are written,
	// until ctx is done or the body is closed.
	Follow bool
	// Machine names the machine whose journal to read: needed for a
	// global unit, otherwise the machine the unit is scheduled on.
	Machine string
}

// Journal streams a unit's journal (atoll's extension route): one
// journald-style JSON object per line. The caller closes the body.
func (c *Client) Journal(ctx context.Context, name string, o JournalOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if o.Lines > 0 {
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Machine != "" {
		q.Set("machine", o.Machine)
	}
	resp, err := c.send(ctx, http.MethodGet, unitPath(name)+"/journal", q, nil)
	if err != nil {
		return nil, fmt.Errorf("unit %q journal: %w", name, err)
	}
	return resp.Body, nil
}

func pageQuery(filter url.Values, token string) url.Values {
	q := url.Values{}
	for k, v := range filter {
		q[k] = v
	}
	if token != "" {
		q.Set("nextPageToken", token)
	}
	return q
}
