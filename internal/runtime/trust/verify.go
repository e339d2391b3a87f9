package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Verify checks signature, a detached OpenPGP signature (armored or binary)
// of signed, against the keys trusted for imageName: those of every prefix
// that covers the name (see Covers) and the root keys. It reads signed to
// the end only when there are keys to check against and the signature
// parses.
//
// The error is nil only for a good signature by a trusted, unexpired,
// unrevoked key. Otherwise it names the image and matches one of
// ErrInvalidImageName, ErrNoKey (*NoKeyError), ErrUntrustedSigner
// (*UntrustedSignerError), ErrBadSignature, ErrKeyExpired or
// ErrKeyRevoked; any other error is a failure to read the store or the
// input. imageName should be the canonical name the image is stored under.
func (s Store) Verify(imageName string, signed, signature io.Reader) error {
	if err := s.check(); err != nil {
		return err
	}
	repo, err := repository(imageName)
	if err != nil {
		return err
	}
	candidates := candidatePrefixes(repo)
	var trusted []loadedKey
	for _, prefix := range append([]string{""}, candidates...) {
		keys, err := s.loadDir(prefix)
		if err != nil {
			return fmt.Errorf("image %q: %w", imageName, err)
		}
		trusted = append(trusted, keys...)
	}
	if len(trusted) == 0 {
		return &NoKeyError{Image: imageName, Prefixes: candidates}
	}

	sigData, err := readLimited(signature, maxSignatureSize, "signature")
	if err != nil {
		return fmt.Errorf("image %q: %w", imageName, err)
	}
	sigData, sig, err := parseSignature(sigData)
	if err != nil {
		return &imageError{image: imageName, msg: "signature is not a detached OpenPGP signature", sentinel: ErrBadSignature, cause: err}
	}

	var keyring openpgp.EntityList
	for _, k := range trusted {
		keyring = append(keyring, k.entities...)
	}
	content := &recordingReader{r: signed}
	_, signer, err := openpgp.VerifyDetachedSignature(keyring, content, bytes.NewReader(sigData), nil)
	if content.err != nil {
		return fmt.Errorf("image %q: read signed content: %w", imageName, content.err)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return s.untrusted(imageName, sig, trusted)
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return &imageError{image: imageName, msg: fmt.Sprintf("signed by key %s, which has been revoked", describeKey(signer, sig)), sentinel: ErrKeyRevoked}
	case errors.Is(err, pgperrors.ErrKeyExpired):
		msg := fmt.Sprintf("signed by key %s, which has expired", describeKey(signer, sig))
		if signer != nil {
			if selfSig, _ := signer.PrimarySelfSignature(); selfSig != nil {
				if t, ok := expiry(signer.PrimaryKey, selfSig); ok && t.Before(time.Now()) {
					msg = fmt.Sprintf("signed by key %s, which expired on %s", describeKey(signer, sig), t.UTC().Format(time.RFC3339))
				}
			}
		}
		return &imageError{image: imageName, msg: msg, sentinel: ErrKeyExpired}
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return &imageError{image: imageName, msg: fmt.Sprintf("signature by key %s has expired", describeKey(signer, sig)), sentinel: ErrBadSignature}
	default:
		return &imageError{image: imageName, msg: fmt.Sprintf("signature does not match (signed by key %s)", describeKey(signer, sig)), sentinel: ErrBadSignature, cause: err}
	}
}

// parseSignature removes the armor, if any, and checks that what is left
// is a sequence of signature packets of binary or text documents naming
// their issuer. It returns the binary signature and its first packet.
func parseSignature(data []byte) ([]byte, *packet.Signature, error) {
	if isArmored(data) {
		block, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, nil, fmt.Errorf("bad armor: %w", err)
		}
		if block.Type != openpgp.SignatureType {
			return nil, nil, fmt.Errorf("armored %q, not %q", block.Type, openpgp.SignatureType)
		}
		data, err = io.ReadAll(io.LimitReader(block.Body, maxSignatureSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("bad armor: %w", err)
		}
		if len(data) > maxSignatureSize {
			return nil, nil, fmt.Errorf("larger than %d bytes", maxSignatureSize)
		}
	}
	var first *packet.Signature
	packets := packet.NewReader(bytes.NewReader(data))
	for {
		p, err := packets.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, nil, fmt.Errorf("found a %s packet, not a signature", packetName(p))
		}
		if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
			return nil, nil, fmt.Errorf("signature of type %#x, not of a document", int(sig.SigType))
		}
		if sig.IssuerKeyId == nil {
			return nil, nil, errors.New("the signature does not name its key")
		}
		if first == nil {
			first = sig
		}
	}
	if first == nil {
		return nil, nil, errors.New("no signature found")
	}
	return data, first, nil
}

// untrusted builds the error for a signature by a key that is not among
// those trusted for the image, saying which prefixes it is trusted for
// instead, if any.
func (s Store) untrusted(imageName string, sig *packet.Signature, trusted []loadedKey) error {
	for _, k := range trusted {
		for _, ent := range k.entities {
			if hasKeyID(ent, *sig.IssuerKeyId) {
				return &imageError{image: imageName, sentinel: ErrBadSignature,
					msg: fmt.Sprintf("signed by key %s, which is trusted for it but whose key flags do not allow signing", signerID(sig))}
			}
		}
	}
	e := &UntrustedSignerError{Image: imageName, Signer: signerID(sig)}
	for _, k := range trusted {
		e.Trusted = append(e.Trusted, k.Fingerprint)
	}
	slices.Sort(e.Trusted)
	e.Trusted = slices.Compact(e.Trusted)
	if all, err := s.allKeys(); err == nil { // best effort: only for the message
		for _, k := range all {
			if slices.ContainsFunc(k.entities, func(ent *openpgp.Entity) bool { return hasKeyID(ent, *sig.IssuerKeyId) }) &&
				!slices.Contains(e.TrustedFor, k.Prefix) {
				e.TrustedFor = append(e.TrustedFor, k.Prefix)
			}
		}
	}
	return e
}

// allKeys loads every key of the store, skipping files that do not parse.
func (s Store) allKeys() ([]loadedKey, error) {
	keys, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []loadedKey
	for _, k := range keys {
		loaded, err := s.loadDir(k.Prefix)
		if err != nil {
			continue
		}
		for _, l := range loaded {
			if l.Fingerprint == k.Fingerprint {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func hasKeyID(e *openpgp.Entity, id uint64) bool {
	if e.PrimaryKey.KeyId == id {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PublicKey.KeyId == id {
			return true
		}
	}
	return false
}

// signerID names the key a signature claims: its fingerprint when the
// signature carries it, else the 16-digit key ID.
func signerID(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) >= 20 {
		return hex.EncodeToString(sig.IssuerFingerprint)
	}
	return fmt.Sprintf("%016x", *sig.IssuerKeyId)
}

// describeKey names the key that made sig: the trusted key's primary
// fingerprint and identity when it is known, else what the signature says.
func describeKey(signer *openpgp.Entity, sig *packet.Signature) string {
	if signer == nil {
		return signerID(sig)
	}
	d := fingerprint(signer)
	if id := signer.PrimaryIdentity(); id != nil {
		d += fmt.Sprintf(" (%s)", id.Name)
	}
	return d
}

func packetName(p packet.Packet) string {
	switch p.(type) {
	case *packet.PublicKey:
		return "public key"
	case *packet.PrivateKey:
		return "secret key"
	case *packet.UserId:
		return "user ID"
	case *packet.LiteralData:
		return "literal data"
	case *packet.Compressed:
		return "compressed data"
	case *packet.OnePassSignature:
		return "one-pass signature (an inline-signed message, not a detached signature)"
	default:
		return fmt.Sprintf("%T", p)
	}
}

// recordingReader remembers a read error of the signed content, so that
// Verify can tell it from a bad signature.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
