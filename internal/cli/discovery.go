package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/discovery"
)

func newDiscoveryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "discovery",
		Short: "Run or use a discovery service that bootstraps clusters from a token",
	}
	var listen, dataDir, publicURL string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve discovery tokens: GET /new?size=N returns a token URL for machines to boot with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			srv, err := discovery.NewServer(discovery.ServerOptions{DataDir: dataDir, PublicURL: publicURL, Logger: log})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("discovery: %w", err)
			}
			log.Info("discovery service listening", "addr", l.Addr().String(), "data-dir", dataDir)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			// Long polls end with ctx, so shutting down does not wait for them.
			httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			go func() {
				<-ctx.Done()
				shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				httpSrv.Shutdown(shutdownCtx)
			}()
			if err := httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("discovery: %w", err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:7001", "address to listen on")
	serve.Flags().StringVar(&dataDir, "data-dir", "/var/lib/atoll/discovery", "where tokens and registrations are kept")
	serve.Flags().StringVar(&publicURL, "public-url", "", "base of the token URLs handed out (default: from the request)")

	var size int
	newToken := &cobra.Command{
		Use:   "new SERVICE-URL",
		Short: "Ask a discovery service for a token for a cluster of --size members",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c discovery.Client
			tokenURL, err := c.NewToken(cmd.Context(), args[0], size)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, tokenURL)
			return nil
		},
	}
	newToken.Flags().IntVar(&size, "size", 3, "number of store members")
	cmd.AddCommand(serve, newToken)
	return cmd
}
