package trust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestVerify(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	appKey := newKey(t, "app")
	rootKey := newKey(t, "root")
	otherKey := newKey(t, "other")
	strangerKey := newKey(t, "stranger")
	portKey := newKey(t, "port")
	subKey := newKey(t, "subkey")
	if err := subKey.AddSigningSubkey(edConfig(time.Time{}, 0)); err != nil {
		t.Fatal(err)
	}
	mustTrust(t, s, "example.com/app", publicArmored(t, appKey))
	mustTrust(t, s, "", publicBinary(t, rootKey))
	mustTrust(t, s, "example.com/other", publicArmored(t, otherKey))
	mustTrust(t, s, "localhost:5000", publicArmored(t, portKey))
	mustTrust(t, s, "sub.example.com", publicArmored(t, subKey))
	// Text before the armor is skipped.
	mustTrust(t, s, "prose.example.com", append([]byte("Our signing key:\n\n"), publicArmored(t, rootKey)...))

	content := []byte(`{"schemaVersion":2,"manifest":"the signed bytes"}`)
	tampered := append(bytes.Clone(content), ' ')

	tests := []struct {
		name    string
		image   string
		signed  []byte
		sig     []byte
		wantErr error  // nil: must verify
		wantMsg string // in the message
	}{
		{name: "prefix key, armored", image: "example.com/app:1.0", signed: content, sig: signArmored(t, appKey, content, nil)},
		{name: "prefix key, binary", image: "example.com/app:1.0", signed: content, sig: signBinary(t, appKey, content, nil)},
		{name: "prefix key covers sub-path", image: "example.com/app/web:1.0", signed: content, sig: signArmored(t, appKey, content, nil)},
		{name: "prefix key covers digest", image: "example.com/app@sha256:" + strings.Repeat("ab", 32), signed: content, sig: signArmored(t, appKey, content, nil)},
		{name: "prefix key, no tag", image: "example.com/app", signed: content, sig: signArmored(t, appKey, content, nil)},
		{name: "host case ignored", image: "Example.COM/app:1.0", signed: content, sig: signArmored(t, appKey, content, nil)},
		{name: "root key", image: "quay.example.org/x/y:2", signed: content, sig: signArmored(t, rootKey, content, nil)},
		{name: "root key for prefixed image", image: "example.com/app:1.0", signed: content, sig: signBinary(t, rootKey, content, nil)},
		{name: "host with port", image: "localhost:5000/app:1.0", signed: content, sig: signArmored(t, portKey, content, nil)},
		{name: "signing subkey", image: "sub.example.com/x:1", signed: content, sig: signArmored(t, subKey, content, nil)},
		{name: "text before armor", image: "example.com/app:1", signed: content, sig: append([]byte("sig:\n"), signArmored(t, appKey, content, nil)...)},
		{
			name: "key of another prefix", image: "example.com/app:1.0", signed: content, sig: signArmored(t, otherKey, content, nil),
			wantErr: ErrUntrustedSigner, wantMsg: fingerprint(otherKey) + `, which is not trusted for it`,
		},
		{
			name: "key of another prefix says which", image: "example.com/app:1.0", signed: content, sig: signArmored(t, otherKey, content, nil),
			wantErr: ErrUntrustedSigner, wantMsg: `trusted only for "example.com/other"`,
		},
		{
			name: "prefix is not a string prefix", image: "example.com/application:1.0", signed: content, sig: signArmored(t, appKey, content, nil),
			wantErr: ErrUntrustedSigner, wantMsg: "trusted: " + fingerprint(rootKey) + ")",
		},
		{
			name: "unknown key", image: "example.com/app:1.0", signed: content, sig: signArmored(t, strangerKey, content, nil),
			wantErr: ErrUntrustedSigner, wantMsg: fingerprint(strangerKey),
		},
		{
			name: "tampered content", image: "example.com/app:1.0", signed: tampered, sig: signArmored(t, appKey, content, nil),
			wantErr: ErrBadSignature, wantMsg: `image "example.com/app:1.0": signature does not match`,
		},
		{
			name: "tampered content, root key", image: "x.org/y:1", signed: tampered, sig: signBinary(t, rootKey, content, nil),
			wantErr: ErrBadSignature, wantMsg: "signature does not match",
		},
		{name: "garbage signature", image: "example.com/app:1.0", signed: content, sig: []byte("this is not a signature"), wantErr: ErrBadSignature},
		{name: "empty signature", image: "example.com/app:1.0", signed: content, sig: nil, wantErr: ErrBadSignature, wantMsg: "no signature found"},
		{name: "truncated signature", image: "example.com/app:1.0", signed: content, sig: signBinary(t, appKey, content, nil)[:40], wantErr: ErrBadSignature},
		{
			name: "garbage in armor", image: "example.com/app:1.0", signed: content,
			sig: []byte("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n"), wantErr: ErrBadSignature,
		},
		{
			name: "public key instead of signature", image: "example.com/app:1.0", signed: content, sig: publicBinary(t, appKey),
			wantErr: ErrBadSignature, wantMsg: "public key packet, not a signature",
		},
		{
			name: "armored key instead of signature", image: "example.com/app:1.0", signed: content, sig: publicArmored(t, appKey),
			wantErr: ErrBadSignature, wantMsg: `not "PGP SIGNATURE"`,
		},
		{name: "dot-dot in name", image: "example.com/app/../other:1", signed: content, sig: signArmored(t, appKey, content, nil), wantErr: ErrInvalidImageName},
		{name: "empty name", image: "", signed: content, sig: signArmored(t, appKey, content, nil), wantErr: ErrInvalidImageName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Verify(tt.image, bytes.NewReader(tt.signed), bytes.NewReader(tt.sig))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Verify = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.image != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.image)) {
				t.Fatalf("error %q does not name the image", err)
			}
		})
	}
}

func TestVerifyUntrustedSignerError(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	appKey, otherKey := newKey(t, "app"), newKey(t, "other")
	mustTrust(t, s, "example.com/app", publicArmored(t, appKey))
	mustTrust(t, s, "example.com/other", publicArmored(t, otherKey))
	content := []byte("manifest")
	err := s.Verify("example.com/app:1.0", bytes.NewReader(content), bytes.NewReader(signArmored(t, otherKey, content, nil)))
	var ue *UntrustedSignerError
	if !errors.As(err, &ue) {
		t.Fatalf("Verify = %v, want *UntrustedSignerError", err)
	}
	want := UntrustedSignerError{
		Image:      "example.com/app:1.0",
		Signer:     fingerprint(otherKey),
		Trusted:    []string{fingerprint(appKey)},
		TrustedFor: []string{"example.com/other"},
	}
	if ue.Image != want.Image || ue.Signer != want.Signer || !slices.Equal(ue.Trusted, want.Trusted) || !slices.Equal(ue.TrustedFor, want.TrustedFor) {
		t.Fatalf("error = %+v, want %+v", *ue, want)
	}
	t.Log(err)
}

func TestVerifyNoKey(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	// A key for another prefix does not count.
	mustTrust(t, s, "example.com/other", publicArmored(t, newKey(t, "other")))
	err := s.Verify("example.com/web:1.0", strings.NewReader("x"), strings.NewReader("y"))
	var nk *NoKeyError
	if !errors.As(err, &nk) || !errors.Is(err, ErrNoKey) {
		t.Fatalf("Verify = %v, want *NoKeyError", err)
	}
	if !slices.Equal(nk.Prefixes, []string{"example.com/web", "example.com"}) {
		t.Fatalf("Prefixes = %q", nk.Prefixes)
	}
	want := `image "example.com/web:1.0": no key is trusted for it (none for "example.com/web", "example.com", nor for every image)`
	if err.Error() != want {
		t.Fatalf("message\n%s\nwant\n%s", err, want)
	}
	if strings.Contains(err.Error(), "--") {
		t.Fatalf("library error names a flag: %s", err)
	}

	// A store directory that does not exist is a store with no keys.
	s = Store{Dir: filepath.Join(t.TempDir(), "missing")}
	if err := s.Verify("a/b", strings.NewReader("x"), strings.NewReader("y")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Verify on a missing store = %v, want ErrNoKey", err)
	}
}

func TestVerifyExpiredAndRevoked(t *testing.T) {
	created := time.Now().Add(-48 * time.Hour)
	// Valid for one hour, two days ago; the signature was made while valid.
	expired := newKeyWith(t, "expired", edConfig(created, time.Hour))
	content := []byte("manifest")
	sig := signArmored(t, expired, content, edConfig(created.Add(10*time.Minute), 0))

	s := Store{Dir: t.TempDir()}
	if _, err := s.Trust("example.com", bytes.NewReader(publicArmored(t, expired))); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("Trust of an expired key = %v, want ErrKeyExpired", err)
	} else {
		t.Log(err)
	}
	// Trusted while it was valid: Verify refuses it now.
	plant(t, s, "example.com", expired)
	err := s.Verify("example.com/app:1", bytes.NewReader(content), bytes.NewReader(sig))
	if !errors.Is(err, ErrKeyExpired) || !strings.Contains(err.Error(), fingerprint(expired)) || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("Verify with an expired key = %v, want ErrKeyExpired naming the key and date", err)
	}
	t.Log(err)

	revoked := newKey(t, "revoked")
	sig = signArmored(t, revoked, content, nil)
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Trust("example.com", bytes.NewReader(publicArmored(t, revoked))); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("Trust of a revoked key = %v, want ErrKeyRevoked", err)
	}
	s2 := Store{Dir: t.TempDir()}
	plant(t, s2, "", revoked)
	err = s2.Verify("example.com/app:1", bytes.NewReader(content), bytes.NewReader(sig))
	if !errors.Is(err, ErrKeyRevoked) || !strings.Contains(err.Error(), fingerprint(revoked)) {
		t.Fatalf("Verify with a revoked key = %v, want ErrKeyRevoked naming the key", err)
	}
	t.Log(err)
}

func TestVerifyExpiredSignature(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	k := newKeyWith(t, "k", edConfig(time.Now().Add(-time.Hour), 0))
	mustTrust(t, s, "", publicArmored(t, k))
	content := []byte("manifest")
	cfg := edConfig(time.Now().Add(-30*time.Minute), 0)
	cfg.SigLifetimeSecs = 60
	err := s.Verify("a/b:1", bytes.NewReader(content), bytes.NewReader(signArmored(t, k, content, cfg)))
	if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Verify of an expired signature = %v, want ErrBadSignature (expired)", err)
	}
}

func TestVerifyContentReadError(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	k := newKey(t, "k")
	mustTrust(t, s, "", publicArmored(t, k))
	boom := errors.New("disk on fire")
	err := s.Verify("a/b:1", iotest.ErrReader(boom), bytes.NewReader(signArmored(t, k, []byte("x"), nil)))
	if !errors.Is(err, boom) || errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v, want the read error, not ErrBadSignature", err)
	}
}

func TestVerifyCorruptKeyFile(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	dir := s.dirFor("example.com")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.Repeat("ab", 20))
	if err := os.WriteFile(path, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Other files (temporaries, notes) are not keys and are ignored.
	if err := os.WriteFile(filepath.Join(dir, ".abc.tmp-123"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Verify("example.com/app:1", strings.NewReader("x"), strings.NewReader("y"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Verify with a corrupt key file = %v, want an error naming %s", err, path)
	}
	if _, err := s.List(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("List with a corrupt key file = %v, want an error naming %s", err, path)
	}
	if err := s.Remove("example.com", strings.Repeat("ab", 20)); err != nil {
		t.Fatalf("Remove of a corrupt key file: %v", err)
	}
}

func TestTrustRefuses(t *testing.T) {
	good := newKey(t, "good")
	two := append(publicBinary(t, good), publicBinary(t, newKey(t, "second"))...)
	tests := []struct {
		name    string
		key     []byte
		wantErr error
		wantMsg string
	}{
		{name: "text", key: []byte("hello, I am not a key\n"), wantErr: ErrInvalidKey, wantMsg: "not a usable OpenPGP public key"},
		{name: "empty", key: nil, wantErr: ErrInvalidKey},
		{name: "armored signature", key: signArmored(t, good, []byte("x"), nil), wantErr: ErrInvalidKey, wantMsg: `armored "PGP SIGNATURE"`},
		{name: "binary signature", key: signBinary(t, good, []byte("x"), nil), wantErr: ErrInvalidKey},
		{name: "armored secret key", key: secretArmored(t, good), wantErr: ErrInvalidKey, wantMsg: "secret key"},
		{name: "two keys", key: two, wantErr: ErrInvalidKey, wantMsg: "holds 2 keys"},
		{name: "broken armor", key: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"), wantErr: ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Store{Dir: t.TempDir()}
			_, err := s.Trust("example.com", bytes.NewReader(tt.key))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Trust = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			t.Log(err)
			if keys, err := s.List(); err != nil || len(keys) != 0 {
				t.Fatalf("after a refused Trust, List = %v, %v", keys, err)
			}
		})
	}
}

func TestTrustRefusesEncryptOnlyKey(t *testing.T) {
	// A key whose self-signature does not allow signing.
	e := newKey(t, "nosign")
	for _, id := range e.Identities {
		id.SelfSignature.FlagSign = false
		if err := id.SelfSignature.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, nil); err != nil {
			t.Fatal(err)
		}
	}
	s := Store{Dir: t.TempDir()}
	_, err := s.Trust("", bytes.NewReader(publicArmored(t, e)))
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "can sign") {
		t.Fatalf("Trust = %v, want ErrInvalidKey (no key that can sign)", err)
	}
}

func TestTrustListRemove(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "trustedkeys")} // created on first Trust
	a, b, r := newKey(t, "alice"), newKey(t, "bob"), newKey(t, "root")
	ka := mustTrust(t, s, "coreos.com/etcd", publicArmored(t, a))
	want := filepath.Join(s.Dir, "prefix.d", "coreos.com", "etcd", fingerprint(a))
	if ka.Path != want || ka.Fingerprint != fingerprint(a) || ka.Prefix != "coreos.com/etcd" {
		t.Fatalf("Trust = %+v, want path %s", ka, want)
	}
	if !slices.Equal(ka.Identities, []string{"alice (test) <alice@example.com>"}) {
		t.Fatalf("Identities = %q", ka.Identities)
	}
	if len(ka.Fingerprint) != 40 || strings.ToLower(ka.Fingerprint) != ka.Fingerprint {
		t.Fatalf("fingerprint %q is not 40 lowercase hex digits", ka.Fingerprint)
	}
	mustTrust(t, s, "coreos.com", publicBinary(t, b))
	mustTrust(t, s, "", publicArmored(t, r))
	mustTrust(t, s, "", publicArmored(t, r)) // again: idempotent

	keys, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Prefix+" "+k.Fingerprint+" "+strings.Join(k.Identities, ","))
	}
	wantList := []string{
		" " + fingerprint(r) + " root (test) <root@example.com>",
		"coreos.com " + fingerprint(b) + " bob (test) <bob@example.com>",
		"coreos.com/etcd " + fingerprint(a) + " alice (test) <alice@example.com>",
	}
	if !slices.Equal(got, wantList) {
		t.Fatalf("List =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "root.d", fingerprint(r))); err != nil {
		t.Fatal(err)
	}

	// By long key ID, in upper case with 0x.
	if err := s.Remove("coreos.com/etcd", "0x"+strings.ToUpper(fingerprint(a)[24:])); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "prefix.d", "coreos.com", "etcd")); !os.IsNotExist(err) {
		t.Fatalf("empty prefix directory left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "prefix.d", "coreos.com")); err != nil {
		t.Fatalf("non-empty parent removed: %v", err)
	}
	if err := s.Remove("coreos.com/etcd", fingerprint(a)); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("second Remove = %v, want ErrNotTrusted", err)
	}
	// A key is removed for one prefix only.
	if err := s.Remove("coreos.com/etcd", fingerprint(b)); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("Remove for the wrong prefix = %v, want ErrNotTrusted", err)
	}
	if err := s.Remove("", fingerprint(r)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("coreos.com", "not-hex"); err == nil {
		t.Fatal("Remove of a malformed fingerprint succeeded")
	}
	if err := s.Remove("../etc", fingerprint(b)); !errors.Is(err, ErrInvalidPrefix) {
		t.Fatalf("Remove with a bad prefix = %v, want ErrInvalidPrefix", err)
	}
	keys, err = s.List()
	if err != nil || len(keys) != 1 || keys[0].Fingerprint != fingerprint(b) {
		t.Fatalf("List after Remove = %+v, %v", keys, err)
	}
	if keys, err := (Store{Dir: filepath.Join(t.TempDir(), "none")}).List(); err != nil || len(keys) != 0 {
		t.Fatalf("List of a missing store = %v, %v", keys, err)
	}
}

func TestTrustBadPrefixWritesNothing(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	key := publicArmored(t, newKey(t, "k"))
	for _, p := range []string{"../x", "/abs", "a//b", "a/../../b", "Example.com/app", "a/b/"} {
		if _, err := s.Trust(p, bytes.NewReader(key)); !errors.Is(err, ErrInvalidPrefix) {
			t.Errorf("Trust(%q) = %v, want ErrInvalidPrefix", p, err)
		}
	}
	entries, _ := os.ReadDir(s.Dir)
	if len(entries) != 0 {
		t.Fatalf("refused prefixes left %v", entries)
	}
	if _, err := (Store{}).Trust("", bytes.NewReader(key)); err == nil {
		t.Fatal("Trust on a Store without Dir succeeded")
	}
}

func TestValidatePrefix(t *testing.T) {
	ok := []string{"", "example.com", "example.com/app", "coreos.com/etcd", "localhost:5000/app", "a", "registry.example.com/team_1/app-web/v2.x", "example.com/App"}
	bad := map[string]string{
		"/example.com":                  "must not start with a slash",
		"example.com/":                  "must not end with a slash",
		"example.com//app":              "empty component",
		"example.com/../etc":            "must start with a letter or digit",
		"example.com/./app":             "must start with a letter or digit",
		"..":                            "must start with a letter or digit",
		"Example.com/app":               "host part must be lowercase",
		"example.com:port/a":            "port after ':' must be digits",
		"example.com:/a":                "port after ':' must be digits",
		"example.com/a:b":               "character ':' not allowed",
		"example.com/a b":               "character ' ' not allowed",
		"example.com/a\\b":              "not allowed",
		"example.com/.hidden":           "must start with a letter or digit",
		"example.com/-x":                "must start with a letter or digit",
		strings.Repeat("a", 256) + "/b": "longer than 255",
		strings.Repeat("a/", 600) + "a": "longer than 1024",
		"example.com/a\x00":             "not allowed",
	}
	for _, p := range ok {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for p, want := range bad {
		err := ValidatePrefix(p)
		if !errors.Is(err, ErrInvalidPrefix) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidPrefix with %q", p, err, want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		prefix, image string
		want          bool
	}{
		{"example.com/app", "example.com/app:1.0", true},
		{"example.com/app", "example.com/app/web:1.0", true},
		{"example.com/app", "example.com/app", true},
		{"example.com/app", "example.com/app@sha256:abcd", true},
		{"example.com/app", "example.com/app/web@sha256:abcd", true},
		{"example.com/app", "example.com/application", false},
		{"example.com/app", "example.com/application:1.0", false},
		{"example.com/app", "example.com:1.0", false},
		{"example.com/app", "example.com/ap", false},
		{"example.com/app", "other.com/example.com/app", false},
		{"example.com/app/web", "example.com/app:1.0", false},
		{"example.com", "example.com/app:1.0", true},
		{"example.com", "example.community/app", false},
		{"example.com", "EXAMPLE.com/app", true},
		{"localhost:5000", "localhost:5000/app:latest", true},
		{"localhost", "localhost:5000/app:latest", false},
		{"app", "app:1.0", true},
		{"", "anything/at:all", true},
		{"", "x", true},
		{"example.com/app", "example.com/app/../../etc:1", false},
		{"", "a//b", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.prefix, tt.image); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.prefix, tt.image, got, tt.want)
		}
	}
}

// TestVerifyMatchesCovers checks Verify against Covers: a key trusted for
// prefix P verifies exactly the images P covers.
func TestVerifyMatchesCovers(t *testing.T) {
	k := newKey(t, "k")
	content := []byte("c")
	sig := signBinary(t, k, content, nil)
	prefixes := []string{"example.com", "example.com/app", "example.com/app/web", "localhost:5000"}
	images := []string{"example.com/app:1", "example.com/app/web:2", "example.com/application", "example.com", "localhost:5000/x", "other.org/example.com/app"}
	for _, p := range prefixes {
		s := Store{Dir: t.TempDir()}
		mustTrust(t, s, p, publicBinary(t, k))
		for _, img := range images {
			err := s.Verify(img, bytes.NewReader(content), bytes.NewReader(sig))
			if got := err == nil; got != Covers(p, img) {
				t.Errorf("key for %q, image %q: Verify = %v, Covers = %v", p, img, err, Covers(p, img))
			}
		}
	}
}

func TestRemoveAmbiguousKeyID(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	dir := s.dirFor("a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := "0123456789abcdef"
	for _, name := range []string{strings.Repeat("1", 24) + id, strings.Repeat("2", 24) + id} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove("a", id); err == nil || !strings.Contains(err.Error(), "several keys") {
		t.Fatalf("Remove by an ambiguous key ID = %v", err)
	}
}
