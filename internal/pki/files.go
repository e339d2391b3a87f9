package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"
)

// File names inside a CA directory.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// Identity names passed to WriteIdentity for the two kinds of identity.
const (
	machineName = "node"
	clientName  = "client"
)

// Files names the three PEM files of a TLS identity: the CA certificate it
// trusts, its own certificate, and that certificate's private key.
type Files struct {
	CA   string // path of the CA certificate (a bundle of several is accepted)
	Cert string // path of the identity's certificate, leaf first
	Key  string // path of the identity's private key
}

// MachineFiles returns the files of a machine's identity in dir:
// dir/ca.crt, dir/node.crt and dir/node.key.
func MachineFiles(dir string) Files { return identityFiles(dir, machineName) }

// ClientFiles returns the files of a client's identity in dir:
// dir/ca.crt, dir/client.crt and dir/client.key.
func ClientFiles(dir string) Files { return identityFiles(dir, clientName) }

func identityFiles(dir, name string) Files {
	return Files{
		CA:   filepath.Join(dir, CAFile),
		Cert: filepath.Join(dir, name+".crt"),
		Key:  filepath.Join(dir, name+".key"),
	}
}

// Check verifies the identity on disk: all three files exist and parse as
// PEM certificates and a private key, the key belongs to the certificate,
// the certificate is valid now, and it chains to the CA. The error is an
// *fs.PathError naming the file at fault and says what is wrong with it;
// for dates it says which bound was crossed and when.
func (f Files) Check() error {
	_, err := f.load(time.Now())
	return err
}

// ServerTLS returns a config that serves the identity's certificate and
// requires every client to present a certificate signed by the CA, at
// TLS 1.2 or later. It runs Check first, so that a bad identity is reported
// at start-up with the file at fault rather than later as failed
// handshakes, and it refuses a certificate not issued for server use.
func (f Files) ServerTLS() (*tls.Config, error) {
	id, err := f.load(time.Now())
	if err != nil {
		return nil, err
	}
	if !hasExtKeyUsage(id.leaf, x509.ExtKeyUsageServerAuth) {
		return nil, &fs.PathError{Op: "server TLS", Path: f.Cert, Err: errors.New("certificate is not issued for server authentication")}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{id.pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.roots,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// ClientTLS returns a config that presents the identity's certificate and
// accepts only servers whose certificate is signed by the CA, at TLS 1.2 or
// later. ServerName is left empty: tls.Dial fills it from the address, and
// callers dialling otherwise set it. Like ServerTLS it runs Check first and
// refuses a certificate not issued for client use.
func (f Files) ClientTLS() (*tls.Config, error) {
	id, err := f.load(time.Now())
	if err != nil {
		return nil, err
	}
	if !hasExtKeyUsage(id.leaf, x509.ExtKeyUsageClientAuth) {
		return nil, &fs.PathError{Op: "client TLS", Path: f.Cert, Err: errors.New("certificate is not issued for client authentication")}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{id.pair},
		RootCAs:      id.roots,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// identity is a checked identity, parsed.
type identity struct {
	roots *x509.CertPool
	leaf  *x509.Certificate
	pair  tls.Certificate
}

// load reads and checks the identity as Check describes, at time now.
func (f Files) load(now time.Time) (*identity, error) {
	const op = "check"
	fail := func(path string, err error) (*identity, error) {
		return nil, &fs.PathError{Op: op, Path: path, Err: err}
	}

	caPEM, err := readFile(op, "CA certificate", f.CA)
	if err != nil {
		return nil, err
	}
	caCerts, err := parseCertsPEM(caPEM)
	if err != nil {
		return fail(f.CA, err)
	}
	roots := x509.NewCertPool()
	for _, c := range caCerts {
		roots.AddCert(c)
	}

	certPEM, err := readFile(op, "certificate", f.Cert)
	if err != nil {
		return nil, err
	}
	chain, err := parseCertsPEM(certPEM)
	if err != nil {
		return fail(f.Cert, err)
	}
	leaf := chain[0]
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}

	keyPEM, err := readFile(op, "private key", f.Key)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fail(f.Key, err)
	}
	if !keyMatches(leaf, key) {
		return fail(f.Key, fmt.Errorf("private key does not match the certificate in %s", f.Cert))
	}

	// Dates first: x509's own message for them names neither the bound
	// nor, here, the file.
	if err := checkDates(leaf, now); err != nil {
		return fail(f.Cert, err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired && slices.ContainsFunc(caCerts, invalid.Cert.Equal) {
			if dateErr := checkDates(invalid.Cert, now); dateErr != nil {
				return fail(f.CA, fmt.Errorf("CA %q: %w", invalid.Cert.Subject.CommonName, dateErr))
			}
		}
		return fail(f.Cert, fmt.Errorf("certificate does not chain to the CA in %s: %w", f.CA, err))
	}

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fail(f.Cert, err)
	}
	return &identity{roots: roots, leaf: leaf, pair: pair}, nil
}

// checkDates reports whether now lies within cert's validity, saying which
// bound it crossed and the dates involved.
func checkDates(cert *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(cert.NotBefore):
		return fmt.Errorf("certificate is not yet valid: not before %s (now %s)", formatTime(cert.NotBefore), formatTime(now))
	case now.After(cert.NotAfter):
		return fmt.Errorf("certificate has expired: not after %s (now %s)", formatTime(cert.NotAfter), formatTime(now))
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// hasExtKeyUsage reports whether cert may be used for usage; a certificate
// that lists no extended key usage may be used for any.
func hasExtKeyUsage(cert *x509.Certificate, usage x509.ExtKeyUsage) bool {
	if len(cert.ExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(cert.ExtKeyUsage, usage) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
}
