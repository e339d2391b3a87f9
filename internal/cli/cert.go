package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/pki"
)

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create the cluster CA and issue machine and client certificates",
	}
	var caDir, caName string
	ca := &cobra.Command{
		Use:   "ca",
		Short: "Create a CA (ca.crt, ca.key) in --ca-dir; an existing CA is never overwritten",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := pki.CreateCA(caDir, pki.CAOptions{CommonName: caName}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "created CA in %s\n", caDir)
			return nil
		},
	}
	ca.Flags().StringVar(&caDir, "ca-dir", "", "directory for ca.crt and ca.key")
	ca.Flags().StringVar(&caName, "common-name", "", "CA common name (default \"atoll cluster CA\")")
	ca.MarkFlagRequired("ca-dir")

	var issueCADir, outDir, machine, clientName string
	var ips []net.IP
	var dnsNames []string
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Issue a machine identity (--machine) or a client identity (--client) into --out",
		Long: `Issue a certificate signed by the CA in --ca-dir.

--machine NAME writes ca.crt, node.crt and node.key: the identity a machine's
daemon uses for store client and peer traffic (--tls-dir of atoll node).
Give the machine's addresses with --ip. --client NAME writes ca.crt,
client.crt and client.key, for atoll kv, etcdctl and other clients.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (machine == "") == (clientName == "") {
				return usagef("give exactly one of --machine and --client")
			}
			authority, err := pki.LoadCA(issueCADir)
			if err != nil {
				return err
			}
			req := pki.IssueRequest{CommonName: machine, IPs: ips, DNSNames: dnsNames, Server: true, Client: true}
			name := "node"
			if clientName != "" {
				req = pki.IssueRequest{CommonName: clientName, Client: true}
				name = "client"
			}
			certPEM, keyPEM, err := authority.Issue(req)
			if err != nil {
				return err
			}
			files, err := authority.WriteIdentity(outDir, name, certPEM, keyPEM)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s, %s and %s\n", files.CA, files.Cert, files.Key)
			return nil
		},
	}
	fl := issue.Flags()
	fl.StringVar(&issueCADir, "ca-dir", "", "directory holding ca.crt and ca.key")
	fl.StringVar(&outDir, "out", "", "directory to write the identity to")
	fl.StringVar(&machine, "machine", "", "issue a machine identity with this common name")
	fl.StringVar(&clientName, "client", "", "issue a client identity with this common name")
	fl.IPSliceVar(&ips, "ip", nil, "IP addresses the machine is reached at")
	fl.StringSliceVar(&dnsNames, "dns", nil, "DNS names the machine is reached at")
	issue.MarkFlagRequired("ca-dir")
	issue.MarkFlagRequired("out")
	cmd.AddCommand(ca, issue)
	return cmd
}
