package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"atoll.dev/atoll/internal/fsutil"
)

// ErrExists is wrapped by CreateCA's error when a CA file is already there.
var ErrExists = errors.New("pki: already exists")

// Defaults and fixed choices; doc.go says why.
const (
	defaultCAName       = "atoll cluster CA"
	defaultCAValidity   = 10 * 365 * 24 * time.Hour
	defaultLeafValidity = 2 * 365 * 24 * time.Hour
	// clockSkew is how far into the past a new certificate starts, so
	// that machines whose clocks run a little behind the issuer's accept it.
	clockSkew  = 5 * time.Minute
	serialBits = 128
)

// File modes. Certificates are public; keys are readable by their owner only.
const (
	dirMode  os.FileMode = 0o700
	certMode os.FileMode = 0o644
	keyMode  os.FileMode = 0o600
)

// CA is a certificate authority: its certificate and the key that signs
// with it. Get one from CreateCA or LoadCA.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// CAOptions configures CreateCA. The zero value gives the defaults.
type CAOptions struct {
	CommonName string        // subject common name; default "atoll cluster CA"
	Validity   time.Duration // lifetime from now; default 10 years
}

// CreateCA makes a new CA with an ECDSA P-256 key and writes dir/ca.crt
// (0644) and dir/ca.key (0600), creating dir (0700) if needed. It refuses,
// with an error wrapping ErrExists that names the path, if either file
// already exists, so that a CA is never overwritten by accident. The check
// and the writes are not one atomic step: two CreateCA calls racing on the
// same directory are not guarded against.
func CreateCA(dir string, opts CAOptions) (*CA, error) {
	const op = "create CA"
	name := opts.CommonName
	if name == "" {
		name = defaultCAName
	}
	validity := opts.Validity
	switch {
	case validity < 0:
		return nil, fmt.Errorf("create CA in %s: validity %s is negative", dir, validity)
	case validity == 0:
		validity = defaultCAValidity
	}

	certPath := filepath.Join(dir, CAFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	for _, path := range []string{certPath, keyPath} {
		_, err := os.Lstat(path)
		switch {
		case err == nil:
			return nil, &fs.PathError{Op: op, Path: path, Err: ErrExists}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("create CA: %w", err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA in %s: generate key: %w", dir, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("create CA in %s: %w", dir, err)
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs machines and clients only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA in %s: sign certificate: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create CA in %s: parse new certificate: %w", dir, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("create CA in %s: %w", dir, err)
	}
	ca := &CA{cert: cert, certPEM: encodeCert(der), key: key}

	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	// The key goes first: a certificate on disk without its key would look
	// like a CA that cannot sign.
	if err := fsutil.WriteFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	if err := fsutil.WriteFileAtomic(certPath, ca.certPEM, certMode); err != nil {
		// We checked that the key did not exist, so it is ours to remove;
		// leaving it would make the next CreateCA refuse.
		os.Remove(keyPath)
		return nil, fmt.Errorf("create CA: %w", err)
	}
	return ca, nil
}

// LoadCA reads the CA in dir (ca.crt and ca.key). Its error is an
// *fs.PathError naming the file at fault and the problem: missing, not PEM,
// not a CA certificate, or a key that does not match the certificate. It
// does not check dates; Issue refuses to sign with an expired CA.
func LoadCA(dir string) (*CA, error) {
	const op = "load CA"
	certPath := filepath.Join(dir, CAFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	fail := func(path string, err error) (*CA, error) {
		return nil, &fs.PathError{Op: op, Path: path, Err: err}
	}

	certPEM, err := readFile(op, "CA certificate", certPath)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return fail(certPath, err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fail(certPath, fmt.Errorf("certificate %q is not a CA certificate (basic constraints do not say CA)", cert.Subject.CommonName))
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fail(certPath, fmt.Errorf("certificate %q is not a CA certificate (key usage lacks certificate signing)", cert.Subject.CommonName))
	}

	keyPEM, err := readFile(op, "CA private key", keyPath)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fail(keyPath, err)
	}
	if !keyMatches(cert, key) {
		return fail(keyPath, fmt.Errorf("private key does not match the certificate in %s", certPath))
	}
	return &CA{cert: cert, certPEM: encodeCert(cert.Raw), key: key}, nil
}

// CertPEM returns the CA certificate as PEM, for others to trust. The
// caller may modify the returned slice.
func (ca *CA) CertPEM() []byte {
	if ca == nil {
		return nil
	}
	return bytes.Clone(ca.certPEM)
}

// IssueRequest describes a certificate for CA.Issue to sign.
type IssueRequest struct {
	CommonName string
	IPs        []net.IP
	DNSNames   []string
	// Validity is the lifetime from now; default 2 years, and never past
	// the CA's own expiry.
	Validity time.Duration
	// Server adds the server-authentication usage, and always adds
	// 127.0.0.1, ::1 and "localhost" to the names, because every machine
	// is also reached over loopback by its own daemon and CLI.
	Server bool
	// Client adds the client-authentication usage. A machine certificate
	// sets both: etcd's peers authenticate one another with it.
	Client bool
}

// Issue makes a new ECDSA P-256 key and a certificate for it signed by the
// CA, with a random 128-bit serial, key usages DigitalSignature and
// KeyEncipherment, and the extended usages the request asks for. It returns
// the certificate as PEM and the key as PKCS#8 PEM. It fails if the common
// name is empty, if neither Server nor Client is set, or if the CA has
// expired.
func (ca *CA) Issue(req IssueRequest) (certPEM, keyPEM []byte, err error) {
	return ca.issue(req, time.Now())
}

func (ca *CA) issue(req IssueRequest, now time.Time) (certPEM, keyPEM []byte, err error) {
	if ca == nil || ca.cert == nil || ca.key == nil {
		return nil, nil, errors.New("issue certificate: CA is not loaded; use CreateCA or LoadCA")
	}
	if req.CommonName == "" {
		return nil, nil, errors.New("issue certificate: common name is empty")
	}
	fail := func(format string, args ...any) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("issue certificate for %q: "+format, append([]any{req.CommonName}, args...)...)
	}
	if !req.Server && !req.Client {
		return fail("neither Server nor Client usage is requested")
	}
	validity := req.Validity
	switch {
	case validity < 0:
		return fail("validity %s is negative", validity)
	case validity == 0:
		validity = defaultLeafValidity
	}
	if !now.Before(ca.cert.NotAfter) {
		return fail("CA %q expired at %s", ca.cert.Subject.CommonName, formatTime(ca.cert.NotAfter))
	}

	notBefore := now.Add(-clockSkew)
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}

	ips, dnsNames, err := subjectAltNames(req)
	if err != nil {
		return fail("%w", err)
	}
	var extUsages []x509.ExtKeyUsage
	if req.Server {
		extUsages = append(extUsages, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		extUsages = append(extUsages, x509.ExtKeyUsageClientAuth)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fail("%w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           extUsages,
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fail("sign: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return fail("%w", err)
	}
	return encodeCert(der), keyPEM, nil
}

// subjectAltNames returns the request's IPs and DNS names, with the
// loopback names added for a server, each once and in the order given.
func subjectAltNames(req IssueRequest) ([]net.IP, []string, error) {
	var ips []net.IP
	addIP := func(ip net.IP) {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	for i, ip := range req.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, nil, fmt.Errorf("IP address %d (%v) is not a valid IP", i+1, ip)
		}
		addIP(ip)
	}
	var dnsNames []string
	addName := func(name string) {
		if !slices.Contains(dnsNames, name) {
			dnsNames = append(dnsNames, name)
		}
	}
	for i, name := range req.DNSNames {
		if name == "" {
			return nil, nil, fmt.Errorf("DNS name %d is empty", i+1)
		}
		addName(name)
	}
	if req.Server {
		addIP(net.IPv4(127, 0, 0, 1))
		addIP(net.IPv6loopback)
		addName("localhost")
	}
	return ips, dnsNames, nil
}

// randomSerial returns a uniformly random serial number in [1, 2^128): RFC
// 5280 asks for a positive serial, and 128 random bits make a collision
// between certificates of one CA practically impossible.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), serialBits)
	limit.Sub(limit, big.NewInt(1))
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// WriteIdentity writes the CA certificate as ca.crt (0644), certPEM as
// <name>.crt (0644) and keyPEM as <name>.key (0600) into dir, creating dir
// (0700) if needed, and returns their Files. name is "node" for a machine
// (see MachineFiles) and "client" for a client (see ClientFiles).
//
// Before writing anything it checks that the key matches the certificate
// and that this CA signed it, so that a mismatched set never reaches disk.
// Each file is replaced atomically; the three together are not, and Check
// reports a set left mismatched by a crash in between. The name "ca" is
// refused, since it would overwrite the CA's own files.
func (ca *CA) WriteIdentity(dir, name string, certPEM, keyPEM []byte) (Files, error) {
	fail := func(err error) (Files, error) {
		return Files{}, fmt.Errorf("write identity %q in %s: %w", name, dir, err)
	}
	if ca == nil || ca.cert == nil {
		return fail(errors.New("CA is not loaded; use CreateCA or LoadCA"))
	}
	switch {
	case name == "" || name == "." || name == "..":
		return fail(errors.New("name is not a file name"))
	case filepath.Base(name) != name:
		return fail(errors.New("name must not contain a path separator"))
	case name+".crt" == CAFile || name+".key" == CAKeyFile:
		return fail(errors.New("name would overwrite the CA files"))
	}

	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return fail(fmt.Errorf("certificate: %w", err))
	}
	leaf := certs[0]
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fail(fmt.Errorf("private key: %w", err))
	}
	if !keyMatches(leaf, key) {
		return fail(errors.New("private key does not match the certificate"))
	}
	if err := leaf.CheckSignatureFrom(ca.cert); err != nil {
		return fail(fmt.Errorf("certificate %q is not signed by CA %q: %w", leaf.Subject.CommonName, ca.cert.Subject.CommonName, err))
	}

	files := identityFiles(dir, name)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fail(err)
	}
	writes := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{files.CA, ca.certPEM, certMode},
		{files.Key, keyPEM, keyMode},
		{files.Cert, certPEM, certMode},
	}
	for _, w := range writes {
		if err := fsutil.WriteFileAtomic(w.path, w.data, w.perm); err != nil {
			return fail(err)
		}
	}
	return files, nil
}
