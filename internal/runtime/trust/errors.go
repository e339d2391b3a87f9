package trust

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is. Every error this package returns for one of these
// conditions matches the sentinel; the message names the image, the key and
// the prefix concerned.
var (
	// ErrNoKey: no key is trusted for the image (nor for any prefix of its
	// name, nor for every image). The error is a *NoKeyError.
	ErrNoKey = errors.New("no key trusted")
	// ErrUntrustedSigner: the signature was made by a key that is not
	// trusted for the image. The error is an *UntrustedSignerError.
	ErrUntrustedSigner = errors.New("signed by an untrusted key")
	// ErrBadSignature: the signature is not a detached OpenPGP signature,
	// or it does not match the signed content, or it has expired.
	ErrBadSignature = errors.New("bad signature")
	// ErrKeyExpired: the key (or the signing subkey) has expired.
	ErrKeyExpired = errors.New("key expired")
	// ErrKeyRevoked: the key (or the signing subkey) has been revoked.
	ErrKeyRevoked = errors.New("key revoked")
	// ErrInvalidKey: what was given to Trust is not a usable OpenPGP public
	// key (not a key, a secret key, several keys, or no key that can sign).
	ErrInvalidKey = errors.New("not a usable OpenPGP public key")
	// ErrInvalidPrefix: the prefix breaks the rules of ValidatePrefix.
	ErrInvalidPrefix = errors.New("invalid prefix")
	// ErrInvalidImageName: the image name cannot be matched against
	// prefixes (empty, or with empty, "." or ".." path components).
	ErrInvalidImageName = errors.New("invalid image name")
	// ErrNotTrusted: Remove was asked for a key that is not trusted for
	// the prefix.
	ErrNotTrusted = errors.New("key not trusted")
)

// NoKeyError is returned by Verify when no key at all is trusted for an
// image. Prefixes lists the prefixes a key could be trusted for to cover
// the image, most specific first (the root, every image, is always
// possible and is not listed); a command-line caller can turn it into a
// hint. It matches ErrNoKey.
type NoKeyError struct {
	Image    string
	Prefixes []string
}

func (e *NoKeyError) Error() string {
	if len(e.Prefixes) == 0 {
		return fmt.Sprintf("image %q: no key is trusted for it (none is trusted for every image)", e.Image)
	}
	return fmt.Sprintf("image %q: no key is trusted for it (none for %s, nor for every image)",
		e.Image, strings.Join(quoteAll(e.Prefixes), ", "))
}

// Is makes errors.Is(err, ErrNoKey) true.
func (e *NoKeyError) Is(target error) bool { return target == ErrNoKey }

// UntrustedSignerError is returned by Verify when the signature was made by
// a key that is not trusted for the image. Signer is the signing key's
// fingerprint when the signature names it, else its 16-hex-digit key ID;
// Trusted lists the fingerprints that are trusted for the image; TrustedFor
// lists the prefixes the signer is trusted for instead, if any ("" being
// every image, which cannot happen here). It matches ErrUntrustedSigner.
type UntrustedSignerError struct {
	Image      string
	Signer     string
	Trusted    []string
	TrustedFor []string
}

func (e *UntrustedSignerError) Error() string {
	msg := fmt.Sprintf("image %q: signed by key %s, which is not trusted for it (trusted: %s)",
		e.Image, e.Signer, strings.Join(e.Trusted, ", "))
	if len(e.TrustedFor) > 0 {
		msg += fmt.Sprintf("; that key is trusted only for %s", strings.Join(quoteAll(e.TrustedFor), ", "))
	}
	return msg
}

// Is makes errors.Is(err, ErrUntrustedSigner) true.
func (e *UntrustedSignerError) Is(target error) bool { return target == ErrUntrustedSigner }

// imageError is every other Verify error: a message about the image that
// matches one sentinel and unwraps to the underlying cause, if any.
type imageError struct {
	image    string
	msg      string
	sentinel error
	cause    error
}

func (e *imageError) Error() string {
	msg := fmt.Sprintf("image %q: %s", e.image, e.msg)
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *imageError) Is(target error) bool { return target == e.sentinel }
func (e *imageError) Unwrap() error        { return e.cause }

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
