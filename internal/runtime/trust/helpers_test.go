package trust

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// edConfig makes keys fast to generate (Ed25519 rather than RSA); at, when
// not zero, is the clock the key and its signatures are made with.
func edConfig(at time.Time, lifetime time.Duration) *packet.Config {
	c := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: uint32(lifetime / time.Second)}
	if !at.IsZero() {
		c.Time = func() time.Time { return at }
	}
	return c
}

func newKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	return newKeyWith(t, name, edConfig(time.Time{}, 0))
}

func newKeyWith(t testing.TB, name string, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publicArmored is the armored public key of e, as `gpg --export --armor`.
func publicArmored(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// publicBinary is the binary public key of e, as `gpg --export`.
func publicBinary(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func secretArmored(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func signArmored(t testing.TB, e *openpgp.Entity, content []byte, cfg *packet.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(content), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func signBinary(t testing.TB, e *openpgp.Entity, content []byte, cfg *packet.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, e, bytes.NewReader(content), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustTrust(t testing.TB, s Store, prefix string, key []byte) Key {
	t.Helper()
	k, err := s.Trust(prefix, bytes.NewReader(key))
	if err != nil {
		t.Fatalf("Trust(%q): %v", prefix, err)
	}
	return k
}

// plant writes a key file into the store as Trust would, without Trust's
// checks: for keys that have expired or been revoked since they were
// trusted.
func plant(t testing.TB, s Store, prefix string, e *openpgp.Entity) {
	t.Helper()
	dir := s.dirFor(prefix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fingerprint(e)), publicArmored(t, e), 0o644); err != nil {
		t.Fatal(err)
	}
}
