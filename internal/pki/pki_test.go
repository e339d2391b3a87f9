package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newCA creates a CA in a fresh directory and returns it with the directory.
func newCA(t testing.TB, opts CAOptions) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := CreateCA(dir, opts)
	if err != nil {
		t.Fatalf("CreateCA(%s): %v", dir, err)
	}
	return ca, dir
}

// machineRequest is what a machine asks for: etcd uses one certificate
// for its client port and its peer port.
func machineRequest(name string) IssueRequest {
	return IssueRequest{CommonName: name, Server: true, Client: true}
}

// writeIssued issues req from ca and writes it as identity name in a fresh
// directory.
func writeIssued(t testing.TB, ca *CA, req IssueRequest, name string) Files {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", req, err)
	}
	files, err := ca.WriteIdentity(t.TempDir(), name, certPEM, keyPEM)
	if err != nil {
		t.Fatalf("WriteIdentity: %v", err)
	}
	return files
}

// signByHand signs a certificate with arbitrary dates, which Issue never
// produces, so that tests can build expired and not-yet-valid identities.
func signByHand(t testing.TB, ca *CA, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "hand-made"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return encodeCert(der), keyPEM
}

func parseLeaf(t testing.TB, certPEM []byte) *x509.Certificate {
	t.Helper()
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		t.Fatalf("parse issued certificate: %v", err)
	}
	return certs[0]
}

// wantPathError fails the test unless err is an *fs.PathError about path
// whose message contains every one of wantText.
func wantPathError(t testing.TB, err error, path string, wantText ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want an error naming %s", path)
	}
	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) {
		t.Fatalf("got error %q of type %T, want an *fs.PathError naming %s", err, err, path)
	}
	if pathErr.Path != path {
		t.Errorf("got error naming %s (%q), want one naming %s", pathErr.Path, err, path)
	}
	for _, text := range wantText {
		if !strings.Contains(err.Error(), text) {
			t.Errorf("got error %q, want it to contain %q", err, text)
		}
	}
}

func fileMode(t testing.TB, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestCreateLoadCARoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		opts         CAOptions
		wantName     string
		wantValidity time.Duration
	}{
		{"defaults", CAOptions{}, "atoll cluster CA", 10 * 365 * 24 * time.Hour},
		{"custom", CAOptions{CommonName: "test CA", Validity: 48 * time.Hour}, "test CA", 48 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			created, dir := newCA(t, tt.opts)
			loaded, err := LoadCA(dir)
			if err != nil {
				t.Fatalf("LoadCA(%s): %v", dir, err)
			}
			if got, want := loaded.CertPEM(), created.CertPEM(); !bytes.Equal(got, want) {
				t.Errorf("loaded CertPEM:\n%s\nwant the created one:\n%s", got, want)
			}
			onDisk, err := os.ReadFile(filepath.Join(dir, CAFile))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := created.CertPEM(), onDisk; !bytes.Equal(got, want) {
				t.Errorf("CertPEM:\n%s\nwant the bytes of ca.crt:\n%s", got, want)
			}
			if !loaded.key.Public().(*ecdsa.PublicKey).Equal(created.key.Public()) {
				t.Errorf("loaded CA key differs from the created one")
			}

			cert := loaded.cert
			if got := cert.Subject.CommonName; got != tt.wantName {
				t.Errorf("common name: got %q, want %q", got, tt.wantName)
			}
			if !cert.IsCA || !cert.BasicConstraintsValid {
				t.Errorf("IsCA: got %v (basic constraints valid %v), want true", cert.IsCA, cert.BasicConstraintsValid)
			}
			if got, want := cert.PublicKey.(*ecdsa.PublicKey).Curve, elliptic.P256(); got != want {
				t.Errorf("curve: got %s, want %s", got.Params().Name, want.Params().Name)
			}
			gotValidity := cert.NotAfter.Sub(before)
			if gotValidity < tt.wantValidity-time.Minute || gotValidity > tt.wantValidity+time.Minute {
				t.Errorf("validity from now: got %s, want about %s", gotValidity, tt.wantValidity)
			}

			if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)); err != nil {
				t.Errorf("tls.LoadX509KeyPair on the CA files: %v", err)
			}
			modes := []struct {
				path string
				want fs.FileMode
			}{
				{dir, 0o700},
				{filepath.Join(dir, CAFile), 0o644},
				{filepath.Join(dir, CAKeyFile), 0o600},
			}
			for _, m := range modes {
				if got := fileMode(t, m.path); got != m.want {
					t.Errorf("mode of %s: got %v, want %v", m.path, got, m.want)
				}
			}
		})
	}
}

func TestCreateCARejectsNegativeValidity(t *testing.T) {
	dir := t.TempDir()
	_, err := CreateCA(dir, CAOptions{Validity: -time.Hour})
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("got error %v, want one saying the validity is negative", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat ca.key after refusal: got %v, want not exist", err)
	}
}

func TestCreateCARefusesToOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing []string // files present before the second CreateCA
	}{
		{"both files", []string{CAFile, CAKeyFile}},
		{"only ca.crt", []string{CAFile}},
		{"only ca.key", []string{CAKeyFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := newCA(t, CAOptions{})
			for _, name := range []string{CAFile, CAKeyFile} {
				if !slices.Contains(tt.existing, name) {
					if err := os.Remove(filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
			}
			original := map[string][]byte{}
			for _, name := range tt.existing {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				original[name] = data
			}

			_, err := CreateCA(dir, CAOptions{})
			if !errors.Is(err, ErrExists) {
				t.Fatalf("second CreateCA: got error %v, want one wrapping ErrExists", err)
			}
			wantPathError(t, err, filepath.Join(dir, tt.existing[0]), filepath.Join(dir, tt.existing[0]))

			for _, name := range []string{CAFile, CAKeyFile} {
				got, err := os.ReadFile(filepath.Join(dir, name))
				want, existed := original[name]
				switch {
				case existed && err != nil:
					t.Errorf("read %s after refusal: %v", name, err)
				case existed && !bytes.Equal(got, want):
					t.Errorf("%s after refusal:\n%s\nwant the original:\n%s", name, got, want)
				case !existed && !errors.Is(err, fs.ErrNotExist):
					t.Errorf("stat %s after refusal: got %v, want not exist (nothing written)", name, err)
				}
			}
		})
	}
}

func TestLoadCAErrors(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	other, otherDir := newCA(t, CAOptions{CommonName: "other CA"})
	otherKey, err := os.ReadFile(filepath.Join(otherDir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey, err := ca.Issue(machineRequest("m1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cert     []byte // nil: no ca.crt
		key      []byte // nil: no ca.key
		wantFile string
		wantText string
	}{
		{"missing certificate", nil, leafKey, CAFile, "no such file"},
		{"garbage certificate", []byte("not a certificate\x00\xff"), otherKey, CAFile, "not PEM"},
		{"key in certificate file", otherKey, otherKey, CAFile, `no CERTIFICATE PEM block (found "PRIVATE KEY")`},
		{"corrupt certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), otherKey, CAFile, "certificate block 1"},
		{"leaf certificate", leafCert, leafKey, CAFile, "not a CA certificate"},
		{"missing key", other.CertPEM(), nil, CAKeyFile, "no such file"},
		{"garbage key", other.CertPEM(), []byte("garbage"), CAKeyFile, "not PEM"},
		{"certificate in key file", other.CertPEM(), other.CertPEM(), CAKeyFile, `no private key PEM block (found "CERTIFICATE")`},
		{"key of another CA", other.CertPEM(), leafKey, CAKeyFile, "does not match the certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string][]byte{CAFile: tt.cert, CAKeyFile: tt.key} {
				if data != nil {
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := LoadCA(dir)
			if got != nil {
				t.Errorf("LoadCA: got a CA, want nil alongside the error")
			}
			wantPathError(t, err, filepath.Join(dir, tt.wantFile), filepath.Join(dir, tt.wantFile), tt.wantText)
		})
	}
}

// TestLoadCAFromOpenSSL checks that a CA whose key is in the SEC 1 form
// openssl writes, preceded by an "EC PARAMETERS" block, loads and signs.
func TestLoadCAFromOpenSSL(t *testing.T) {
	ca, dir := newCA(t, CAOptions{})
	der, err := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := append(
		pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA with an openssl-style key: %v", err)
	}
	if _, _, err := loaded.Issue(machineRequest("m1")); err != nil {
		t.Errorf("Issue from the loaded CA: %v", err)
	}
}

func TestIssue(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	serialLimit := new(big.Int).Lsh(big.NewInt(1), 128)
	tests := []struct {
		name        string
		req         IssueRequest
		wantExt     []x509.ExtKeyUsage
		wantIPs     []string
		wantDNS     []string
		identity    string
		wantsServer bool
	}{
		{
			name:    "machine",
			req:     IssueRequest{CommonName: "m1", IPs: []net.IP{net.ParseIP("10.0.0.5")}, DNSNames: []string{"m1.cluster"}, Server: true, Client: true},
			wantExt: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			wantIPs: []string{"10.0.0.5", "127.0.0.1", "::1"},
			wantDNS: []string{"m1.cluster", "localhost"},
		},
		{
			name:    "server names loopback once",
			req:     IssueRequest{CommonName: "s", IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}, Server: true},
			wantExt: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			wantIPs: []string{"127.0.0.1", "::1"},
			wantDNS: []string{"localhost"},
		},
		{
			name:    "client gets no implicit names",
			req:     IssueRequest{CommonName: "admin", Client: true},
			wantExt: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.Issue(tt.req)
			if err != nil {
				t.Fatalf("Issue(%+v): %v", tt.req, err)
			}
			cert := parseLeaf(t, certPEM)

			if got := cert.Subject.CommonName; got != tt.req.CommonName {
				t.Errorf("common name: got %q, want %q", got, tt.req.CommonName)
			}
			if !slices.Equal(cert.ExtKeyUsage, tt.wantExt) {
				t.Errorf("extended key usage: got %v, want %v", cert.ExtKeyUsage, tt.wantExt)
			}
			if got, want := cert.KeyUsage, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment; got != want {
				t.Errorf("key usage: got %b, want %b", got, want)
			}
			if cert.IsCA {
				t.Errorf("IsCA: got true, want false")
			}
			var gotIPs []string
			for _, ip := range cert.IPAddresses {
				gotIPs = append(gotIPs, ip.String())
			}
			if !slices.Equal(gotIPs, tt.wantIPs) {
				t.Errorf("IP SANs: got %v, want %v", gotIPs, tt.wantIPs)
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs: got %v, want %v", cert.DNSNames, tt.wantDNS)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.Cmp(serialLimit) >= 0 {
				t.Errorf("serial: got %s, want in [1, 2^128)", cert.SerialNumber)
			}
			pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() {
				t.Errorf("public key: got %T, want an ECDSA P-256 key", cert.PublicKey)
			}
			if err := cert.CheckSignatureFrom(ca.cert); err != nil {
				t.Errorf("signature by the CA: %v", err)
			}
			block, _ := pem.Decode(keyPEM)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Errorf("key PEM: got block %v, want a PKCS#8 \"PRIVATE KEY\" block", block)
			}

			name := "client"
			if tt.req.Server {
				name = "node"
			}
			files, err := ca.WriteIdentity(t.TempDir(), name, certPEM, keyPEM)
			if err != nil {
				t.Fatalf("WriteIdentity: %v", err)
			}
			if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
				t.Errorf("tls.LoadX509KeyPair(%s, %s): %v", files.Cert, files.Key, err)
			}
			if err := files.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	seen := map[string]bool{}
	for range 20 {
		certPEM, _, err := ca.Issue(IssueRequest{CommonName: "c", Client: true})
		if err != nil {
			t.Fatal(err)
		}
		serial := parseLeaf(t, certPEM).SerialNumber.String()
		if seen[serial] {
			t.Fatalf("serial %s issued twice, want every serial distinct", serial)
		}
		seen[serial] = true
	}
}

func TestIssueRejects(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	tests := []struct {
		name     string
		ca       *CA
		req      IssueRequest
		wantText string
	}{
		{"empty common name", ca, IssueRequest{Server: true}, "common name is empty"},
		{"no usage", ca, IssueRequest{CommonName: "m1"}, "neither Server nor Client"},
		{"negative validity", ca, IssueRequest{CommonName: "m1", Client: true, Validity: -time.Second}, "negative"},
		{"empty DNS name", ca, IssueRequest{CommonName: "m1", Server: true, DNSNames: []string{"ok", ""}}, "DNS name 2 is empty"},
		{"invalid IP", ca, IssueRequest{CommonName: "m1", Server: true, IPs: []net.IP{{1, 2, 3}}}, "IP address 1"},
		{"zero CA", &CA{}, IssueRequest{CommonName: "m1", Server: true}, "CA is not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := tt.ca.Issue(tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Issue(%+v): got error %v, want one containing %q", tt.req, err, tt.wantText)
			}
			if certPEM != nil || keyPEM != nil {
				t.Errorf("Issue: got %d certificate bytes and %d key bytes, want none", len(certPEM), len(keyPEM))
			}
		})
	}
}

func TestIssueValidity(t *testing.T) {
	const year = 365 * 24 * time.Hour
	longCA, _ := newCA(t, CAOptions{})
	shortCA, _ := newCA(t, CAOptions{Validity: year})
	now := time.Now()
	tests := []struct {
		name          string
		ca            *CA
		validity      time.Duration
		wantNotAfter  time.Time
		wantNotBefore time.Time
	}{
		{"default is two years", longCA, 0, now.Add(2 * year), now.Add(-clockSkew)},
		{"explicit", longCA, time.Hour, now.Add(time.Hour), now.Add(-clockSkew)},
		{"capped at the CA", shortCA, 0, shortCA.cert.NotAfter, now.Add(-clockSkew)},
		{"explicit capped at the CA", shortCA, 5 * year, shortCA.cert.NotAfter, now.Add(-clockSkew)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, _, err := tt.ca.issue(IssueRequest{CommonName: "m1", Client: true, Validity: tt.validity}, now)
			if err != nil {
				t.Fatal(err)
			}
			cert := parseLeaf(t, certPEM)
			// Certificates hold whole seconds.
			if got, want := cert.NotAfter, tt.wantNotAfter.Truncate(time.Second); !got.Equal(want) {
				t.Errorf("NotAfter: got %s, want %s", got, want)
			}
			if got, want := cert.NotBefore, tt.wantNotBefore.Truncate(time.Second); !got.Equal(want) {
				t.Errorf("NotBefore: got %s, want %s", got, want)
			}
		})
	}

	t.Run("expired CA refuses", func(t *testing.T) {
		later := shortCA.cert.NotAfter.Add(time.Second)
		_, _, err := shortCA.issue(IssueRequest{CommonName: "m1", Client: true}, later)
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("Issue after the CA's expiry: got error %v, want one saying the CA expired", err)
		}
	})
}

// handshake runs one TLS connection over loopback between the two configs
// and echoes four bytes over it. It returns each side's first error.
func handshake(t *testing.T, serverConfig, clientConfig *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	serverDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		tlsConn := tls.Server(conn, serverConfig)
		if err := tlsConn.Handshake(); err != nil {
			serverDone <- err
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tlsConn, buf); err != nil {
			serverDone <- err
			return
		}
		_, err = tlsConn.Write(buf)
		serverDone <- err
	}()

	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	clientErr = func() error {
		dialer := &tls.Dialer{Config: clientConfig}
		conn, err := dialer.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		if _, err := conn.Write([]byte("ping")); err != nil {
			return err
		}
		// Under TLS 1.3 the client finishes its handshake before the server
		// has checked the client's certificate; a rejection shows up here.
		got := make([]byte, 4)
		if _, err := io.ReadFull(conn, got); err != nil {
			return err
		}
		if string(got) != "ping" {
			t.Errorf("echo: got %q, want %q", got, "ping")
		}
		return nil
	}()
	return <-serverDone, clientErr
}

func TestTLSHandshake(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	other, _ := newCA(t, CAOptions{CommonName: "other CA"})
	server := writeIssued(t, ca, machineRequest("m1"), "node")
	client := writeIssued(t, ca, IssueRequest{CommonName: "admin", Client: true}, "client")
	foreignServer := writeIssued(t, other, machineRequest("intruder"), "node")
	foreignClient := writeIssued(t, other, IssueRequest{CommonName: "intruder", Client: true}, "client")
	// An intruder may know our CA certificate (it is public) and trust it,
	// and a client intruder presents its certificate even though the server
	// asks for ours (Go's client would otherwise send none), so that only
	// the check of the intruder's own certificate can stop it.
	ourCA := x509.NewCertPool()
	ourCA.AddCert(ca.cert)
	trustOurCA := func(c *tls.Config) {
		c.RootCAs = ourCA
		c.ClientCAs = ourCA
		own := c.Certificates[0]
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &own, nil }
	}

	tests := []struct {
		name          string
		server        Files
		client        Files
		serverTweak   func(*tls.Config)
		clientTweak   func(*tls.Config)
		wantRejecting string // the side that must refuse the other; "" for success
	}{
		{"same CA", server, client, nil, nil, ""},
		{"machine as client, as etcd peers do", server, server, nil, nil, ""},
		{"server certificate of another CA", foreignServer, client, trustOurCA, nil, "client"},
		{"client certificate of another CA", server, foreignClient, nil, trustOurCA, "server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverConfig, err := tt.server.ServerTLS()
			if err != nil {
				t.Fatalf("ServerTLS: %v", err)
			}
			clientConfig, err := tt.client.ClientTLS()
			if err != nil {
				t.Fatalf("ClientTLS: %v", err)
			}
			if tt.serverTweak != nil {
				tt.serverTweak(serverConfig)
			}
			if tt.clientTweak != nil {
				tt.clientTweak(clientConfig)
			}
			serverErr, clientErr := handshake(t, serverConfig, clientConfig)
			if tt.wantRejecting == "" {
				if serverErr != nil || clientErr != nil {
					t.Fatalf("handshake: got server error %v and client error %v, want both nil", serverErr, clientErr)
				}
				return
			}
			rejectingErr := map[string]error{"server": serverErr, "client": clientErr}[tt.wantRejecting]
			if rejectingErr == nil || !strings.Contains(rejectingErr.Error(), "unknown authority") {
				t.Errorf("%s side: got error %v, want it to reject the peer's certificate as signed by an unknown authority", tt.wantRejecting, rejectingErr)
			}
			if serverErr == nil || clientErr == nil {
				t.Errorf("got server error %v and client error %v, want both sides to fail", serverErr, clientErr)
			}
		})
	}
}

func TestTLSConfigs(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	files := writeIssued(t, ca, machineRequest("m1"), "node")
	serverConfig, err := files.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	if serverConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("server ClientAuth: got %v, want %v", serverConfig.ClientAuth, tls.RequireAndVerifyClientCert)
	}
	clientConfig, err := files.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	for name, config := range map[string]*tls.Config{"server": serverConfig, "client": clientConfig} {
		if config.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s MinVersion: got %#x, want %#x", name, config.MinVersion, tls.VersionTLS12)
		}
		if len(config.Certificates) != 1 {
			t.Errorf("%s certificates: got %d, want 1", name, len(config.Certificates))
		}
	}
}

func TestTLSConfigsRefuseWrongUsage(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	clientOnly := writeIssued(t, ca, IssueRequest{CommonName: "admin", Client: true}, "client")
	serverOnly := writeIssued(t, ca, IssueRequest{CommonName: "web", Server: true}, "node")

	_, err := clientOnly.ServerTLS()
	wantPathError(t, err, clientOnly.Cert, "not issued for server authentication")
	_, err = serverOnly.ClientTLS()
	wantPathError(t, err, serverOnly.Cert, "not issued for client authentication")
}

func TestCheck(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	other, _ := newCA(t, CAOptions{CommonName: "other CA"})
	shortCA, _ := newCA(t, CAOptions{CommonName: "short CA", Validity: time.Hour})
	now := time.Now()

	// Each case gets a good machine identity in a fresh directory and
	// breaks it; wantFile picks the file the error must name.
	tests := []struct {
		name     string
		ca       *CA
		breakIt  func(t *testing.T, f Files)
		at       time.Time
		wantFile func(f Files) string // nil: Check must pass
		wantText []string
	}{
		{
			name: "valid",
		},
		{
			name:     "missing key",
			breakIt:  func(t *testing.T, f Files) { remove(t, f.Key) },
			wantFile: func(f Files) string { return f.Key },
			wantText: []string{"no such file"},
		},
		{
			name:     "missing certificate",
			breakIt:  func(t *testing.T, f Files) { remove(t, f.Cert) },
			wantFile: func(f Files) string { return f.Cert },
			wantText: []string{"no such file"},
		},
		{
			name:     "missing CA",
			breakIt:  func(t *testing.T, f Files) { remove(t, f.CA) },
			wantFile: func(f Files) string { return f.CA },
			wantText: []string{"no such file"},
		},
		{
			name:     "garbage certificate",
			breakIt:  func(t *testing.T, f Files) { overwrite(t, f.Cert, []byte("garbage")) },
			wantFile: func(f Files) string { return f.Cert },
			wantText: []string{"not PEM"},
		},
		{
			name:     "garbage key",
			breakIt:  func(t *testing.T, f Files) { overwrite(t, f.Key, []byte("garbage")) },
			wantFile: func(f Files) string { return f.Key },
			wantText: []string{"not PEM"},
		},
		{
			name: "key of another certificate",
			breakIt: func(t *testing.T, f Files) {
				_, keyPEM, err := ca.Issue(machineRequest("m2"))
				if err != nil {
					t.Fatal(err)
				}
				overwrite(t, f.Key, keyPEM)
			},
			wantFile: func(f Files) string { return f.Key },
			wantText: []string{"does not match the certificate"},
		},
		{
			name: "certificate of another CA",
			breakIt: func(t *testing.T, f Files) {
				certPEM, keyPEM, err := other.Issue(machineRequest("m1"))
				if err != nil {
					t.Fatal(err)
				}
				overwrite(t, f.Cert, certPEM)
				overwrite(t, f.Key, keyPEM)
			},
			wantFile: func(f Files) string { return f.Cert },
			wantText: []string{"does not chain to the CA", "unknown authority"},
		},
		{
			name: "expired certificate",
			breakIt: func(t *testing.T, f Files) {
				certPEM, keyPEM := signByHand(t, ca, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
				overwrite(t, f.Cert, certPEM)
				overwrite(t, f.Key, keyPEM)
			},
			wantFile: func(f Files) string { return f.Cert },
			wantText: []string{"has expired", "not after 2021-01-01T00:00:00Z"},
		},
		{
			name: "certificate not yet valid",
			breakIt: func(t *testing.T, f Files) {
				certPEM, keyPEM := signByHand(t, ca, now.Add(time.Hour), ca.cert.NotAfter)
				overwrite(t, f.Cert, certPEM)
				overwrite(t, f.Key, keyPEM)
			},
			wantFile: func(f Files) string { return f.Cert },
			wantText: []string{"not yet valid", "not before " + formatTime(now.Add(time.Hour).Truncate(time.Second))},
		},
		{
			name: "expired CA",
			ca:   shortCA,
			breakIt: func(t *testing.T, f Files) {
				// Issue caps a certificate at its CA's expiry; by hand it
				// can outlive the CA, so only the CA is at fault.
				certPEM, keyPEM := signByHand(t, shortCA, now.Add(-time.Minute), now.Add(365*24*time.Hour))
				overwrite(t, f.Cert, certPEM)
				overwrite(t, f.Key, keyPEM)
			},
			at:       now.Add(2 * time.Hour),
			wantFile: func(f Files) string { return f.CA },
			wantText: []string{`CA "short CA"`, "has expired", "not after " + formatTime(shortCA.cert.NotAfter)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := tt.ca
			if issuer == nil {
				issuer = ca
			}
			files := writeIssued(t, issuer, machineRequest("m1"), "node")
			if tt.breakIt != nil {
				tt.breakIt(t, files)
			}
			var err error
			if tt.at.IsZero() {
				err = files.Check()
			} else {
				_, err = files.load(tt.at)
			}
			if tt.wantFile == nil {
				if err != nil {
					t.Fatalf("Check: got %v, want nil", err)
				}
				return
			}
			wantPathError(t, err, tt.wantFile(files), tt.wantText...)
			if _, tlsErr := files.ServerTLS(); tt.at.IsZero() && tlsErr == nil {
				t.Errorf("ServerTLS: got no error, want the one Check gives")
			}
		})
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func overwrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMachineAndClientFiles(t *testing.T) {
	tests := []struct {
		name string
		got  Files
		want Files
	}{
		{"machine", MachineFiles("/var/lib/atoll/tls"), Files{CA: "/var/lib/atoll/tls/ca.crt", Cert: "/var/lib/atoll/tls/node.crt", Key: "/var/lib/atoll/tls/node.key"}},
		{"client", ClientFiles("tls"), Files{CA: "tls/ca.crt", Cert: "tls/client.crt", Key: "tls/client.key"}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s files: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

func TestWriteIdentity(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	certPEM, keyPEM, err := ca.Issue(machineRequest("m1"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	files, err := ca.WriteIdentity(dir, "node", certPEM, keyPEM)
	if err != nil {
		t.Fatalf("WriteIdentity: %v", err)
	}
	if want := MachineFiles(dir); files != want {
		t.Errorf("files: got %+v, want %+v", files, want)
	}
	contents := []struct {
		path     string
		want     []byte
		wantMode fs.FileMode
	}{
		{files.CA, ca.CertPEM(), 0o644},
		{files.Cert, certPEM, 0o644},
		{files.Key, keyPEM, 0o600},
	}
	for _, c := range contents {
		got, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n%s\nwant:\n%s", c.path, got, c.want)
		}
		if got := fileMode(t, c.path); got != c.wantMode {
			t.Errorf("mode of %s: got %v, want %v", c.path, got, c.wantMode)
		}
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("mode of %s: got %v, want %v", dir, got, fs.FileMode(0o700))
	}
	if err := files.Check(); err != nil {
		t.Errorf("Check after WriteIdentity: %v", err)
	}
}

func TestWriteIdentityRefuses(t *testing.T) {
	ca, _ := newCA(t, CAOptions{})
	other, _ := newCA(t, CAOptions{CommonName: "other CA"})
	certPEM, keyPEM, err := ca.Issue(machineRequest("m1"))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ca.Issue(machineRequest("m2"))
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := other.Issue(machineRequest("m1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		idName   string
		cert     []byte
		key      []byte
		wantText string
	}{
		{"CA name", "ca", certPEM, keyPEM, "overwrite the CA files"},
		{"empty name", "", certPEM, keyPEM, "not a file name"},
		{"path in name", "../node", certPEM, keyPEM, "path separator"},
		{"garbage certificate", "node", []byte("garbage"), keyPEM, "certificate: not PEM"},
		{"garbage key", "node", certPEM, []byte("garbage"), "private key: not PEM"},
		{"key of another certificate", "node", certPEM, otherKey, "does not match"},
		{"certificate of another CA", "node", foreignCert, foreignKey, `not signed by CA "atoll cluster CA"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			_, err := ca.WriteIdentity(dir, tt.idName, tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("WriteIdentity(%q): got error %v, want one containing %q", tt.idName, err, tt.wantText)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %s after refusal: got %v, want not exist (nothing written)", dir, err)
			}
		})
	}
}

// FuzzLoadCA feeds arbitrary bytes to LoadCA as ca.crt and ca.key. LoadCA
// must not panic, any error must name one of the two files, and a CA it
// accepts must be consistent.
func FuzzLoadCA(f *testing.F) {
	ca, dir := newCA(f, CAOptions{})
	caCert, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		f.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	leafCert, leafKey, err := ca.Issue(machineRequest("m1"))
	if err != nil {
		f.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(caCert, caKey)
	f.Add(caCert, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(caCert, leafKey)
	f.Add(leafCert, leafKey)
	f.Add(caKey, caCert)
	f.Add([]byte{}, []byte{})
	f.Add([]byte("garbage"), caKey)
	f.Add(caCert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), caKey)

	// One directory serves every input a fuzzing process runs, one after
	// the other: a fresh one per input costs more than LoadCA itself.
	fuzzDir := f.TempDir()
	certPath := filepath.Join(fuzzDir, CAFile)
	keyPath := filepath.Join(fuzzDir, CAKeyFile)
	f.Fuzz(func(t *testing.T, certData, keyData []byte) {
		// Removing before writing, rather than truncating, keeps ext4 from
		// flushing the old data on every input (auto_da_alloc), which made
		// this forty times slower.
		for path, data := range map[string][]byte{certPath: certData, keyPath: keyData} {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			overwrite(t, path, data)
		}

		loaded, err := LoadCA(fuzzDir)
		if err != nil {
			var pathErr *fs.PathError
			if !errors.As(err, &pathErr) || (pathErr.Path != certPath && pathErr.Path != keyPath) {
				t.Fatalf("LoadCA: got error %q, want an *fs.PathError naming %s or %s", err, certPath, keyPath)
			}
			return
		}
		// A CA that loads must hand out a certificate that parses back to
		// a CA certificate whose public key matches the key it signs with.
		certs, err := parseCertsPEM(loaded.CertPEM())
		if err != nil {
			t.Fatalf("CertPEM of a loaded CA does not parse: %v", err)
		}
		if !certs[0].IsCA || !keyMatches(certs[0], loaded.key) {
			t.Fatalf("CertPEM of a loaded CA: got IsCA %v and key match %v, want both true", certs[0].IsCA, keyMatches(certs[0], loaded.key))
		}
	})
}
