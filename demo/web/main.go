// Command web is the workload of `make demo`: a small web server that says
// which pod answered, so that the demo can show a request reaching a pod
// through the pod's own address and through a port its machine publishes.
//
//	web [-addr ADDR]
//
// GET / answers with a short plain-text page: the host name (the pod's),
// its addresses (not loopback or link-local ones), how many pages it has
// served, the time and the client's address. GET /healthz answers "ok".
// -addr defaults to $WEB_ADDR, or :80.
//
// SIGTERM and SIGINT stop it gracefully with exit status 0, so that
// `atoll pod stop` ends the pod as a success rather than a failure.
//
// It uses only the standard library, so its image is one static binary
// (scripts/demo.sh builds it with internal/runtime/imagetest/mkimage).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// server answers the demo's requests.
type server struct {
	hostname string
	// addrs lists the addresses to show; a function so that a test can
	// pin them and the page shows those the pod has now.
	addrs func() []string
	now   func() time.Time
	log   *log.Logger
	pages atomic.Int64
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	n := s.pages.Add(1)
	addrs := strings.Join(s.addrs(), " ")
	if addrs == "" {
		addrs = "-"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello from %s\n", s.hostname)
	fmt.Fprintf(w, "addresses: %s\n", addrs)
	fmt.Fprintf(w, "request:   %d\n", n)
	fmt.Fprintf(w, "time:      %s\n", s.now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "client:    %s\n", r.RemoteAddr)
	s.log.Printf("page %d for %s", n, r.RemoteAddr)
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// interfaceAddrs are this host's addresses that others can reach it at:
// neither loopback nor link-local ones.
func interfaceAddrs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	var out []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && !ipnet.IP.IsLinkLocalUnicast() {
			out = append(out, ipnet.IP.String())
		}
	}
	return out
}

func main() {
	defaultAddr := os.Getenv("WEB_ADDR")
	if defaultAddr == "" {
		defaultAddr = ":80"
	}
	addr := flag.String("addr", defaultAddr, "the `ADDRESS` to listen on ($WEB_ADDR sets the default)")
	flag.Parse()
	logger := log.New(os.Stderr, "web: ", 0)
	if err := run(*addr, logger); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

func run(addr string, logger *log.Logger) error {
	hostname, err := os.Hostname()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := &server{hostname: hostname, addrs: interfaceAddrs, now: time.Now, log: logger}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Printf("%s listening on %s", hostname, ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Printf("stopped after %d pages", s.pages.Load())
	return nil
}
