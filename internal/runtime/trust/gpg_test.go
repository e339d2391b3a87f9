package trust

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGnuPGKeys checks that keys and detached signatures made by GnuPG, as
// image publishers make them, are accepted: an RSA key that signs with its
// primary key, and an Ed25519 key that certifies only and signs with a
// subkey.
func TestGnuPGKeys(t *testing.T) {
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg not installed")
	}
	tests := []struct {
		name   string
		create [][]string // gpg arguments; FPR is replaced by the new key's fingerprint
	}{
		{name: "rsa default", create: [][]string{{"--quick-generate-key", "RSA Signer <rsa@example.com>", "default", "default", "never"}}},
		{name: "ed25519 signing subkey", create: [][]string{
			{"--quick-generate-key", "Ed Signer <ed@example.com>", "ed25519", "cert", "never"},
			{"--quick-add-key", "FPR", "ed25519", "sign", "never"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// gpg-agent's socket path must stay short: use a short temp dir.
			home, err := os.MkdirTemp("", "gpg")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
				os.RemoveAll(home)
			})
			run := func(args ...string) []byte {
				t.Helper()
				cmd := exec.Command(gpg, append([]string{"--batch", "--homedir", home, "--passphrase", "", "--pinentry-mode", "loopback"}, args...)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
				}
				return out
			}
			fpr := ""
			for _, args := range tt.create {
				for i := range args {
					if args[i] == "FPR" {
						args[i] = fpr
					}
				}
				run(args...)
				if fpr == "" {
					fpr = gpgFingerprint(t, run("--with-colons", "--list-keys"))
				}
			}
			content := []byte(`{"manifest":"signed by gpg"}` + "\n")
			contentPath := filepath.Join(home, "content")
			if err := os.WriteFile(contentPath, content, 0o644); err != nil {
				t.Fatal(err)
			}
			run("--armor", "--output", contentPath+".asc", "--detach-sign", contentPath)
			run("--output", contentPath+".sig", "--detach-sign", contentPath)

			s := Store{Dir: t.TempDir()}
			k, err := s.Trust("example.com/app", bytes.NewReader(run("--armor", "--export", fpr)))
			if err != nil {
				t.Fatalf("Trust of a gpg key: %v", err)
			}
			if k.Fingerprint != strings.ToLower(fpr) {
				t.Fatalf("fingerprint %s, gpg says %s", k.Fingerprint, fpr)
			}
			// The binary export is accepted too.
			if _, err := s.Trust("example.com/bin", bytes.NewReader(run("--export", fpr))); err != nil {
				t.Fatalf("Trust of a binary gpg key: %v", err)
			}
			for _, sigPath := range []string{contentPath + ".asc", contentPath + ".sig"} {
				sig, err := os.ReadFile(sigPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Verify("example.com/app:1.0", bytes.NewReader(content), bytes.NewReader(sig)); err != nil {
					t.Errorf("Verify of %s: %v", filepath.Base(sigPath), err)
				}
				err = s.Verify("example.com/app:1.0", bytes.NewReader(append(content, 'x')), bytes.NewReader(sig))
				if !errors.Is(err, ErrBadSignature) {
					t.Errorf("Verify of tampered content with %s = %v, want ErrBadSignature", filepath.Base(sigPath), err)
				}
			}
			// A secret key export is refused.
			if _, err := s.Trust("example.com/x", bytes.NewReader(run("--armor", "--export-secret-keys", fpr))); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Trust of a gpg secret key = %v, want ErrInvalidKey", err)
			}
		})
	}
}

// gpgFingerprint returns the fingerprint of the first key in a
// `gpg --with-colons --list-keys` listing.
func gpgFingerprint(t *testing.T, listing []byte) string {
	t.Helper()
	for _, line := range strings.Split(string(listing), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return f[9]
		}
	}
	t.Fatalf("no fingerprint in gpg listing:\n%s", listing)
	return ""
}
