package fleetapi

import (
	"crypto/tls"

	"atoll.dev/atoll/internal/pki"
)

// TLSConfig is the server side of the API's TCP listener: it serves the
// machine's certificate (certFile, keyFile) and requires every client to
// present a certificate signed by the cluster CA (caFile), at TLS 1.2 or
// later. These are the files pki.MachineFiles names. A bad identity is
// reported now, naming the file at fault.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	return pki.Files{CA: caFile, Cert: certFile, Key: keyFile}.ServerTLS()
}
