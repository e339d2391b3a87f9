package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newKVCmd(g *globals) *cobra.Command {
	var sf storeFlags
	var output string
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write the cluster store (a small etcdctl)",
	}
	sf.register(cmd)
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "text or json")
	withClient := func(run func(ctx context.Context, cli *clientv3.Client, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			cli, _, err := sf.dial(ctx, g)
			if err != nil {
				return err
			}
			defer cli.Close()
			return run(ctx, cli, args)
		}
	}

	var getPrefix bool
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a key's value (or, with --prefix, every key under it)",
		Args:  exactArgs(1),
		RunE: withClient(func(ctx context.Context, cli *clientv3.Client, args []string) error {
			var opts []clientv3.OpOption
			if getPrefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := cli.Get(ctx, args[0], opts...)
			if err != nil {
				return fmt.Errorf("get %q: %w", args[0], err)
			}
			if output == "json" {
				return printJSON(g.stdout, kvsJSON(resp.Kvs))
			}
			for _, kv := range resp.Kvs {
				if getPrefix {
					fmt.Fprintf(g.stdout, "%s\n", kv.Key)
				}
				fmt.Fprintf(g.stdout, "%s\n", kv.Value)
			}
			return nil
		}),
	}
	get.Flags().BoolVar(&getPrefix, "prefix", false, "every key that starts with KEY")

	put := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set a key (VALUE - reads standard input)",
		Args:  exactArgs(2),
		RunE: withClient(func(ctx context.Context, cli *clientv3.Client, args []string) error {
			value := args[1]
			if value == "-" {
				data, err := io.ReadAll(os.Stdin)
				if err != nil {
					return err
				}
				value = string(data)
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := cli.Put(ctx, args[0], value)
			if err != nil {
				return fmt.Errorf("put %q: %w", args[0], err)
			}
			if output == "json" {
				return printJSON(g.stdout, map[string]int64{"revision": resp.Header.Revision})
			}
			fmt.Fprintln(g.stdout, "OK")
			return nil
		}),
	}

	var delPrefix bool
	del := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key (or, with --prefix, every key under it)",
		Args:  exactArgs(1),
		RunE: withClient(func(ctx context.Context, cli *clientv3.Client, args []string) error {
			var opts []clientv3.OpOption
			if delPrefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := cli.Delete(ctx, args[0], opts...)
			if err != nil {
				return fmt.Errorf("del %q: %w", args[0], err)
			}
			if output == "json" {
				return printJSON(g.stdout, map[string]int64{"deleted": resp.Deleted})
			}
			fmt.Fprintln(g.stdout, resp.Deleted)
			return nil
		}),
	}
	del.Flags().BoolVar(&delPrefix, "prefix", false, "every key that starts with KEY")

	var watchPrefix bool
	watch := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print changes to a key (or every key under it) until interrupted",
		Args:  exactArgs(1),
		RunE: withClient(func(ctx context.Context, cli *clientv3.Client, args []string) error {
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			defer stop()
			var opts []clientv3.OpOption
			if watchPrefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			for resp := range cli.Watch(clientv3.WithRequireLeader(ctx), args[0], opts...) {
				if err := resp.Err(); err != nil {
					return fmt.Errorf("watch %q: %w", args[0], err)
				}
				for _, ev := range resp.Events {
					if output == "json" {
						printJSONLine(g.stdout, map[string]any{"type": ev.Type.String(), "kv": kvJSON(ev.Kv)})
						continue
					}
					fmt.Fprintf(g.stdout, "%s\n%s\n", ev.Type, ev.Kv.Key)
					if ev.Type == clientv3.EventTypePut {
						fmt.Fprintf(g.stdout, "%s\n", ev.Kv.Value)
					}
				}
			}
			return nil
		}),
	}
	watch.Flags().BoolVar(&watchPrefix, "prefix", false, "every key that starts with KEY")

	members := &cobra.Command{
		Use:   "members",
		Short: "List the store's members",
		Args:  cobra.NoArgs,
		RunE: withClient(func(ctx context.Context, cli *clientv3.Client, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := cli.MemberList(ctx)
			if err != nil {
				return fmt.Errorf("list members: %w", err)
			}
			type member struct {
				ID         string   `json:"id"`
				Name       string   `json:"name"`
				PeerURLs   []string `json:"peerURLs"`
				ClientURLs []string `json:"clientURLs"`
				Learner    bool     `json:"learner"`
			}
			var list []member
			for _, m := range resp.Members {
				list = append(list, member{strconv.FormatUint(m.ID, 16), m.Name, m.PeerURLs, m.ClientURLs, m.IsLearner})
			}
			if output == "json" {
				return printJSON(g.stdout, list)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPEER URLS\tCLIENT URLS\tLEARNER")
			for _, m := range list {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%v\n", m.ID, m.Name, m.PeerURLs, m.ClientURLs, m.Learner)
			}
			return tw.Flush()
		}),
	}

	health := &cobra.Command{
		Use:   "health",
		Short: "Check each endpoint with a linearizable read; exit 1 if any fails",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			opts, err := sf.target(cmd.Context(), g)
			if err != nil {
				return err
			}
			results := checkEndpoints(cmd.Context(), opts)
			if output == "json" {
				if err := printJSON(g.stdout, results); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ENDPOINT\tHEALTHY\tTOOK\tERROR")
				for _, r := range results {
					fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", r.Endpoint, r.Healthy, r.Took, r.Error)
				}
				tw.Flush()
			}
			for _, r := range results {
				if !r.Healthy {
					return fmt.Errorf("endpoint %s is unhealthy: %s", r.Endpoint, r.Error)
				}
			}
			return nil
		},
	}

	cmd.AddCommand(get, put, del, watch, members, health)
	return cmd
}

type kvOut struct {
	Key            string `json:"key"`
	Value          string `json:"value"`
	CreateRevision int64  `json:"createRevision"`
	ModRevision    int64  `json:"modRevision"`
	Version        int64  `json:"version"`
	Lease          int64  `json:"lease,omitempty"`
}

func kvJSON(kv *mvccKV) kvOut {
	return kvOut{string(kv.Key), string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease}
}

func kvsJSON(kvs []*mvccKV) []kvOut {
	out := make([]kvOut, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kvJSON(kv))
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printJSONLine(w io.Writer, v any) {
	json.NewEncoder(w).Encode(v)
}
