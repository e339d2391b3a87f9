package trust

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// fuzzSigner is a fixed key (testdata/fuzz-signer.sec.asc, worthless and
// published) so that the corpus in testdata/fuzz holds signatures by a
// trusted key, reaching the checks behind the issuer lookup.
func fuzzSigner(t testing.TB) *openpgp.Entity {
	t.Helper()
	f, err := os.Open("testdata/fuzz-signer.sec.asc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	el, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil || len(el) != 1 {
		t.Fatalf("read fuzz signer: %v (%d keys)", err, len(el))
	}
	return el[0]
}

var fuzzContent = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)

func FuzzVerify(f *testing.F) {
	signer := fuzzSigner(f)
	s := Store{Dir: f.TempDir()}
	mustTrust(f, s, "example.com/app", publicArmored(f, signer))
	armored := signArmored(f, signer, fuzzContent, nil)
	binary := signBinary(f, signer, fuzzContent, nil)
	f.Add(armored)
	f.Add(binary)
	f.Add(binary[:len(binary)/2])
	f.Add(signBinary(f, signer, []byte("other content"), nil))
	f.Add(signBinary(f, newKey(f, "stranger"), fuzzContent, nil))
	f.Add(publicBinary(f, signer))
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sig []byte) {
		err := s.Verify("example.com/app:1.0", bytes.NewReader(fuzzContent), bytes.NewReader(sig))
		if err == nil {
			// Accepted: it must be a real signature of exactly this content.
			tampered := append(bytes.Clone(fuzzContent), '!')
			if err := s.Verify("example.com/app:1.0", bytes.NewReader(tampered), bytes.NewReader(sig)); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signature accepted for the content and, with %v, for tampered content", err)
			}
			return
		}
		for _, want := range []error{ErrBadSignature, ErrUntrustedSigner, ErrKeyExpired, ErrKeyRevoked} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("Verify error matches no sentinel: %v", err)
	})
}

func FuzzTrust(f *testing.F) {
	signer := fuzzSigner(f)
	f.Add(publicArmored(f, signer))
	pub := publicBinary(f, signer)
	f.Add(pub)
	f.Add(pub[:len(pub)-7])
	f.Add(secretArmored(f, signer))
	f.Add(signBinary(f, signer, fuzzContent, nil))
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte("not a key"))
	f.Fuzz(func(t *testing.T, key []byte) {
		s := Store{Dir: t.TempDir()}
		k, err := s.Trust("example.com/app", bytes.NewReader(key))
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrKeyExpired) && !errors.Is(err, ErrKeyRevoked) {
				t.Fatalf("Trust error matches no sentinel: %v", err)
			}
			if keys, lerr := s.List(); lerr != nil || len(keys) != 0 {
				t.Fatalf("refused key left %v, %v", keys, lerr)
			}
			return
		}
		stored, err := os.ReadFile(k.Path)
		if err != nil || !bytes.Equal(stored, key) {
			t.Fatalf("stored key differs from the one given (%v)", err)
		}
		keys, err := s.List()
		if err != nil || len(keys) != 1 || keys[0].Fingerprint != k.Fingerprint {
			t.Fatalf("List after Trust = %+v, %v", keys, err)
		}
		// A stored key must not make Verify panic, whatever the signature.
		_ = s.Verify("example.com/app:1", bytes.NewReader(fuzzContent), bytes.NewReader(signBinary(t, signer, fuzzContent, nil)))
		if err := s.Remove("example.com/app", k.Fingerprint); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	})
}
