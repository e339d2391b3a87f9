package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// PEM block types this package writes and reads.
const (
	pemCertificate = "CERTIFICATE"
	pemPKCS8Key    = "PRIVATE KEY"
	pemECKey       = "EC PRIVATE KEY"
	pemRSAKey      = "RSA PRIVATE KEY"
)

// maxReportedTypes bounds how many unexpected PEM block types an error
// lists, since the file may hold any number of them.
const maxReportedTypes = 4

var errNotPEM = errors.New("not PEM: no -----BEGIN block found")

// readFile reads path, the file holding what, and on failure reports the
// problem under op with the path named once (os errors already name it;
// repeating it reads badly).
func readFile(op, what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: no path given for the %s", op, what)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, &fs.PathError{Op: op, Path: path, Err: err}
	}
	return data, nil
}

// parseCertsPEM returns every CERTIFICATE block in data, in order. Other
// block types are skipped; at least one certificate must be present.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var (
		certs  []*x509.Certificate
		others []string
		sawPEM bool
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type != pemCertificate {
			others = append(others, block.Type)
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate block %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	switch {
	case !sawPEM:
		return nil, errNotPEM
	case len(certs) == 0:
		return nil, fmt.Errorf("no %s PEM block (found %s)", pemCertificate, describeTypes(others))
	}
	return certs, nil
}

// parseKeyPEM returns the first private key in data. It reads PKCS#8, which
// this package writes, and also SEC 1 and PKCS#1, which openssl writes, so
// that an operator may bring a CA made with other tools. Blocks that hold no
// key, such as openssl's "EC PARAMETERS", are skipped.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	var (
		others []string
		sawPEM bool
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		var (
			key any
			err error
		)
		switch block.Type {
		case pemPKCS8Key:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemECKey:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case pemRSAKey:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			others = append(others, block.Type)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s block: key of type %T cannot sign", block.Type, key)
		}
		return signer, nil
	}
	if !sawPEM {
		return nil, errNotPEM
	}
	return nil, fmt.Errorf("no private key PEM block (found %s)", describeTypes(others))
}

// describeTypes lists PEM block types for an error message, quoted because
// they come from the file.
func describeTypes(types []string) string {
	if len(types) == 0 {
		return "none"
	}
	quoted := make([]string, 0, maxReportedTypes)
	for i, typ := range types {
		if i == maxReportedTypes {
			quoted = append(quoted, fmt.Sprintf("and %d more", len(types)-i))
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", typ))
	}
	return strings.Join(quoted, ", ")
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

// encodeCert returns cert as one PEM CERTIFICATE block.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// encodeKey returns key as one PKCS#8 PEM block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: der}), nil
}
