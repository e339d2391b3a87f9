package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func testServer() *server {
	return &server{
		hostname: "web-m1",
		addrs:    func() []string { return []string{"172.16.28.2"} },
		now:      func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		log:      log.New(io.Discard, "", 0),
	}
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = "10.213.1.12:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestPageSaysWhoAnsweredAndCountsRequests(t *testing.T) {
	h := testServer().routes()
	get(t, h, "GET", "/")
	code, body := get(t, h, "GET", "/")
	want := "hello from web-m1\n" +
		"addresses: 172.16.28.2\n" +
		"request:   2\n" +
		"time:      2026-01-02T03:04:05Z\n" +
		"client:    10.213.1.12:40000\n"
	if code != http.StatusOK || body != want {
		t.Errorf("second GET /: got %d %q, want 200 %q", code, body, want)
	}
}

func TestHealthzAndUnknownPaths(t *testing.T) {
	s := testServer()
	h := s.routes()
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", http.StatusOK, "ok\n"},
		{"GET", "/nothing", http.StatusNotFound, ""},
		{"POST", "/", http.StatusMethodNotAllowed, ""},
	} {
		code, body := get(t, h, tc.method, tc.path)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s: got %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
	if n := s.pages.Load(); n != 0 {
		t.Errorf("pages counted for requests other than GET /: got %d, want 0", n)
	}
}
