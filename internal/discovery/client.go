package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client talks to a discovery server. Its zero value is usable.
type Client struct {
	// HTTPClient makes the requests; nil means http.DefaultClient. If it has
	// a Timeout, Wait's long polls are kept shorter than it.
	HTTPClient *http.Client
}

// Backoff between Wait's attempts after a transient error.
const (
	minRetryDelay = 250 * time.Millisecond
	maxRetryDelay = 10 * time.Second
	// minPollInterval keeps Wait from spinning on a server or proxy that
	// answers long polls at once.
	minPollInterval = 500 * time.Millisecond
	// maxResponseBytes bounds what the client reads: 1000 registrations of
	// 32 URLs each fit well within it.
	maxResponseBytes = 32 << 20
)

// statusError is an answer with an unexpected HTTP status. kind is the
// sentinel the status maps to, nil for statuses without one.
type statusError struct {
	method, url string
	code        int
	msg         string
	kind        error
}

func (e *statusError) Error() string {
	if e.kind != nil {
		return fmt.Sprintf("%s %s: %s: %v", e.method, e.url, e.msg, e.kind)
	}
	return fmt.Sprintf("%s %s: %s (HTTP %d)", e.method, e.url, e.msg, e.code)
}

func (e *statusError) Unwrap() error { return e.kind }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// NewToken asks the service at serviceURL (for example
// "http://10.0.0.1:7001") for a token for a cluster of size members and
// returns the token URL. It makes one request, blocks until it is answered or
// ctx is done, and does not retry. A size outside 1..9 is refused by the
// server with ErrInvalid.
func (c *Client) NewToken(ctx context.Context, serviceURL string, size int) (string, error) {
	base, err := parseHTTPURL(serviceURL)
	if err != nil {
		return "", fmt.Errorf("new token: service URL %q: %w", serviceURL, err)
	}
	newURL := base.JoinPath("new")
	newURL.RawQuery = url.Values{"size": {strconv.Itoa(size)}}.Encode()
	body, err := c.do(ctx, http.MethodPost, newURL.String(), nil, http.StatusCreated, http.StatusOK)
	if err != nil {
		return "", err
	}
	tokenURL := strings.TrimSpace(string(body))
	if _, err := parseTokenURL(tokenURL); err != nil {
		return "", fmt.Errorf("POST %s: answer %q is not a token URL: %w", newURL, truncate(tokenURL), err)
	}
	return tokenURL, nil
}

// Register registers the machine machineID (32 lowercase hex digits) under
// tokenURL and returns its role. Registering again with the same reg returns
// the same Assignment; with a different reg, or a name another machine holds,
// it fails with ErrConflict. It makes one request, blocks until it is
// answered or ctx is done, and does not retry.
func (c *Client) Register(ctx context.Context, tokenURL, machineID string, reg Registration) (Assignment, error) {
	u, err := parseTokenURL(tokenURL)
	if err != nil {
		return Assignment{}, fmt.Errorf("register machine %s: %w", machineID, err)
	}
	if err := checkMachineID(machineID); err != nil {
		return Assignment{}, fmt.Errorf("register at %s: %w: %w", tokenURL, err, ErrInvalid)
	}
	data, err := json.Marshal(reg.normalize())
	if err != nil {
		return Assignment{}, fmt.Errorf("register machine %s: %w", machineID, err)
	}
	machineURL := u.JoinPath(machineID).String()
	body, err := c.do(ctx, http.MethodPut, machineURL, data, http.StatusCreated, http.StatusOK)
	if err != nil {
		return Assignment{}, err
	}
	var a Assignment
	if err := json.Unmarshal(body, &a); err != nil {
		return Assignment{}, fmt.Errorf("PUT %s: decode answer: %w", machineURL, err)
	}
	if (a.Role != RoleMember && a.Role != RoleClient) || a.Size < minSize {
		return Assignment{}, fmt.Errorf("PUT %s: answer has role %q and size %d, want member or client and a size", machineURL, truncate(a.Role), a.Size)
	}
	return a, nil
}

// Get returns the state of tokenURL at once, full or not. It makes one
// request, blocks until it is answered or ctx is done, and does not retry.
func (c *Client) Get(ctx context.Context, tokenURL string) (State, error) {
	u, err := parseTokenURL(tokenURL)
	if err != nil {
		return State{}, fmt.Errorf("get token: %w", err)
	}
	return c.get(ctx, u, 0)
}

// Wait blocks until the member list of tokenURL is full and returns the
// state. It long-polls the server, polling again when a poll ends without a
// full list, and retries transient failures (a connection error, a 5xx or
// 429 answer) with exponential backoff up to 10s. It returns early on any
// other error (ErrNotFound for an unknown token, for instance), and when ctx
// is done, with an error wrapping ctx's error and the last state it saw, so
// the caller can tell how many members registered.
func (c *Client) Wait(ctx context.Context, tokenURL string) (State, error) {
	u, err := parseTokenURL(tokenURL)
	if err != nil {
		return State{}, fmt.Errorf("wait for token: %w", err)
	}
	pollTimeout := defaultPollTimeout
	if t := c.httpClient().Timeout; t > 0 && t < pollTimeout+5*time.Second {
		pollTimeout = max(t*3/4, time.Second)
	}
	var (
		last    State
		lastErr error
		delay   = minRetryDelay
	)
	// The first request does not wait, so that a cancelled Wait can still
	// report how far registration got.
	for polled := false; ; {
		var pause time.Duration
		pollStart := time.Now()
		wait := pollTimeout
		if !polled {
			wait = 0
		}
		st, err := c.get(ctx, u, wait)
		switch {
		case err == nil:
			if st.Full() {
				return st, nil
			}
			last, lastErr, delay = st, nil, minRetryDelay
			if polled {
				pause = minPollInterval - time.Since(pollStart)
			}
			polled = true
		case ctx.Err() != nil:
			// The error is the cancellation itself; report it below.
		case transient(err):
			lastErr = err
			pause = delay/2 + rand.N(delay/2+1)
			delay = min(2*delay, maxRetryDelay)
		default:
			return last, err
		}
		if err := sleep(ctx, pause); err != nil {
			msg := fmt.Sprintf("wait for %s: %d of %d members registered", tokenURL, len(last.Members), last.Size)
			if last.Size == 0 {
				msg = fmt.Sprintf("wait for %s: no answer yet", tokenURL)
			}
			if lastErr != nil {
				msg += fmt.Sprintf(" (last error: %v)", lastErr)
			}
			return last, fmt.Errorf("%s: %w", msg, err)
		}
	}
}

// sleep waits for d or until ctx is done, and returns ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// transient reports whether a failed request is worth repeating: the server
// could not be reached, or it answered 5xx or 429.
func transient(err error) bool {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.code >= 500 || se.code == http.StatusTooManyRequests
	}
	_, ok := errors.AsType[*url.Error](err)
	return ok
}

// Deregister removes the registration of machineID under tokenURL, for a
// member that left the cluster. It fails with ErrNotFound if the machine or
// token is not registered. It makes one request, blocks until it is answered
// or ctx is done, and does not retry.
func (c *Client) Deregister(ctx context.Context, tokenURL, machineID string) error {
	u, err := parseTokenURL(tokenURL)
	if err != nil {
		return fmt.Errorf("deregister machine %s: %w", machineID, err)
	}
	if err := checkMachineID(machineID); err != nil {
		return fmt.Errorf("deregister at %s: %w: %w", tokenURL, err, ErrInvalid)
	}
	_, err = c.do(ctx, http.MethodDelete, u.JoinPath(machineID).String(), nil, http.StatusNoContent, http.StatusOK)
	return err
}

// get fetches the state of the token at u, long-polling for up to wait if
// wait is positive.
func (c *Client) get(ctx context.Context, u *url.URL, wait time.Duration) (State, error) {
	getURL := *u
	if wait > 0 {
		getURL.RawQuery = url.Values{"wait": {"true"}, "timeout": {wait.String()}}.Encode()
	}
	body, err := c.do(ctx, http.MethodGet, getURL.String(), nil, http.StatusOK)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(body, &st); err != nil {
		return State{}, fmt.Errorf("GET %s: decode answer: %w", getURL.String(), err)
	}
	if st.Size < minSize || len(st.Members) > st.Size {
		return State{}, fmt.Errorf("GET %s: answer has size %d and %d members", getURL.String(), st.Size, len(st.Members))
	}
	return st, nil
}

// do makes one request and returns the body of an answer with one of the
// wanted statuses. Any other answer is a *statusError wrapping the sentinel
// its status maps to; a transport failure is the *url.Error from the
// http.Client, which names the method and URL.
func (c *Client) do(ctx context.Context, method, rawURL string, body []byte, want ...int) ([]byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, rawURL, err)
	}
	if len(answer) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, rawURL, maxResponseBytes)
	}
	if slices.Contains(want, resp.StatusCode) {
		return answer, nil
	}
	se := &statusError{method: method, url: rawURL, code: resp.StatusCode, msg: errorMessage(resp.StatusCode, answer)}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		se.kind = ErrInvalid
	case http.StatusNotFound:
		se.kind = ErrNotFound
	case http.StatusConflict:
		se.kind = ErrConflict
	}
	return nil, se
}

// errorMessage extracts the server's message from an error answer.
func errorMessage(code int, answer []byte) string {
	var eb errorBody
	if json.Unmarshal(answer, &eb) == nil && eb.Error != "" {
		return truncate(eb.Error)
	}
	if text := strings.TrimSpace(string(answer)); text != "" && !strings.ContainsAny(text, "\n\r") {
		return truncate(text)
	}
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// parseHTTPURL parses an absolute http or https URL.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errors.Unwrap(err), ErrInvalid)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an http or https URL with a host: %w", ErrInvalid)
	}
	return u, nil
}

// parseTokenURL parses a token URL: an http(s) URL whose last path element
// is a token.
func parseTokenURL(tokenURL string) (*url.URL, error) {
	u, err := parseHTTPURL(tokenURL)
	if err != nil {
		return nil, fmt.Errorf("token URL %q: %w", truncate(tokenURL), err)
	}
	if u.RawQuery != "" || u.Fragment != "" || !validToken(path.Base(u.Path)) {
		return nil, fmt.Errorf("token URL %q: want http(s)://host[:port][/path]/<32 hex digits>: %w", truncate(tokenURL), ErrInvalid)
	}
	return u, nil
}
