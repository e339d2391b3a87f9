// Package trust keeps the OpenPGP keys atoll trusts to sign images, after
// rkt's `rkt trust`, and checks detached image signatures against them.
//
// A key is trusted for an image-name prefix. The store is a directory
// (/etc/atoll/trustedkeys on a machine) laid out as rkt's:
//
//	<dir>/prefix.d/<prefix>/<fingerprint>   keys for images under <prefix>
//	<dir>/root.d/<fingerprint>              keys for every image
//
// where the prefix's slashes become directories (prefix.d/example.com/app/…)
// and a file holds one public key, armored or binary, named by its
// fingerprint in lowercase hex. A key trusted for "example.com/app" covers
// "example.com/app:1.0" and "example.com/app/web:1.0", not
// "example.com/application"; see Covers and ValidatePrefix for the rules.
//
// Writes are atomic (a reader sees a key file whole or not at all), so a
// Store may be used by several processes at once. Errors match the
// sentinels below with errors.Is; they do not mention command-line flags:
// the CLI adds its own hints (see NoKeyError).
//
// This package imports nothing from atoll but internal/fsutil.
package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"atoll.dev/atoll/internal/fsutil"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MachineDir is where a machine keeps its trusted keys.
const MachineDir = "/etc/atoll/trustedkeys"

const (
	rootDir   = "root.d"
	prefixDir = "prefix.d"

	// maxKeySize bounds a key file; real public keys, even with many
	// certifications, are far smaller.
	maxKeySize = 8 << 20
	// maxSignatureSize bounds a detached signature; the largest
	// (post-quantum) ones are some tens of kilobytes.
	maxSignatureSize = 1 << 20

	keyFileMode = 0o644
	dirMode     = 0o755
)

// Store is a directory of trusted keys. The zero value with Dir set is
// ready to use; it holds no other state.
type Store struct {
	Dir string
}

// Key describes one trusted key.
type Key struct {
	// Prefix is the image-name prefix the key is trusted for; "" means
	// every image.
	Prefix string
	// Fingerprint is the primary key's fingerprint in lowercase hex (40
	// digits for a version 4 key, 64 for a version 6 key).
	Fingerprint string
	// Identities are the key's user IDs ("Name <email>"), primary first.
	Identities []string
	// Path is the file holding the key.
	Path string
}

// Trust adds the public key read from key (armored or binary) to the keys
// trusted for prefix ("" for every image). The key must parse, be a public
// key (a secret key is refused, to keep secrets out of the store), be a
// single key, be neither revoked nor expired, and have a key that can sign.
// Trusting a key again for the same prefix replaces its file.
func (s Store) Trust(prefix string, key io.Reader) (Key, error) {
	if err := s.check(); err != nil {
		return Key{}, err
	}
	if err := ValidatePrefix(prefix); err != nil {
		return Key{}, err
	}
	data, err := readLimited(key, maxKeySize, "key")
	if err != nil {
		return Key{}, fmt.Errorf("trust key for %s: %w", describePrefix(prefix), err)
	}
	e, err := parseOneKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("trust key for %s: %w", describePrefix(prefix), err)
	}
	fp := fingerprint(e)
	if err := usable(e, time.Now()); err != nil {
		return Key{}, fmt.Errorf("trust key %s for %s: %w", fp, describePrefix(prefix), err)
	}
	dir := s.dirFor(prefix)
	if err := ensureDir(dir); err != nil {
		return Key{}, fmt.Errorf("trust key %s for %s: %w", fp, describePrefix(prefix), err)
	}
	path := filepath.Join(dir, fp)
	if err := fsutil.WriteFileAtomic(path, data, keyFileMode); err != nil {
		return Key{}, fmt.Errorf("trust key %s for %s: %w", fp, describePrefix(prefix), err)
	}
	return Key{Prefix: prefix, Fingerprint: fp, Identities: identities(openpgp.EntityList{e}), Path: path}, nil
}

// List returns every trusted key, the root ones first, then by prefix and
// fingerprint. A store directory that does not exist holds no keys. A key
// file that no longer parses is an error naming it (remove it with Remove).
func (s Store) List() ([]Key, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var keys []Key
	root, err := s.loadDir("")
	if err != nil {
		return nil, err
	}
	for _, k := range root {
		keys = append(keys, k.Key)
	}
	base := filepath.Join(s.Dir, prefixDir)
	err = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == base && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() || path == base {
			return nil
		}
		rel, err := filepath.Rel(base, path)
		if err != nil {
			return err
		}
		prefix := filepath.ToSlash(rel)
		if checkPrefix(prefix) != nil {
			return filepath.SkipDir // not made by Trust; never consulted by Verify
		}
		loaded, err := s.loadDir(prefix)
		if err != nil {
			return err
		}
		for _, k := range loaded {
			keys = append(keys, k.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list trusted keys in %s: %w", s.Dir, err)
	}
	slices.SortStableFunc(keys, func(a, b Key) int {
		if c := strings.Compare(a.Prefix, b.Prefix); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	return keys, nil
}

// Remove stops trusting a key for prefix ("" for every image). fingerprint
// is the full fingerprint or the 16-hex-digit long key ID (the last 16
// digits of a version 4 fingerprint, the first 16 of a version 6 one), in
// any case, with or without spaces or a leading "0x". Directories of the
// prefix left empty are removed.
func (s Store) Remove(prefix, fingerprint string) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	id := normalizeID(fingerprint)
	if !isHex(id) || (len(id) != 16 && len(id) != 40 && len(id) != 64) {
		return fmt.Errorf("remove key %q: not a fingerprint (40 or 64 hex digits) or long key ID (16)", fingerprint)
	}
	dir := s.dirFor(prefix)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove key %s for %s: %w", id, describePrefix(prefix), err)
	}
	var matches []string
	for _, ent := range entries {
		name := ent.Name()
		if !isFingerprintName(name) {
			continue
		}
		if name == id || len(id) == 16 && (len(name) == 40 && strings.HasSuffix(name, id) || len(name) == 64 && strings.HasPrefix(name, id)) {
			matches = append(matches, name)
		}
	}
	switch len(matches) {
	case 0:
		return fmt.Errorf("remove key %s: %w for %s", id, ErrNotTrusted, describePrefix(prefix))
	case 1:
	default:
		return fmt.Errorf("remove key %s for %s: the key ID matches several keys (%s); give the full fingerprint",
			id, describePrefix(prefix), strings.Join(matches, ", "))
	}
	if err := os.Remove(filepath.Join(dir, matches[0])); err != nil {
		return fmt.Errorf("remove key %s for %s: %w", matches[0], describePrefix(prefix), err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("remove key %s for %s: %w", matches[0], describePrefix(prefix), err)
	}
	if prefix != "" {
		s.pruneEmpty(dir)
	}
	return nil
}

// pruneEmpty removes dir and its parents up to prefix.d while they are
// empty. It is tidying only: a failure (a directory not empty, a race
// with Trust) is not an error.
func (s Store) pruneEmpty(dir string) {
	base := filepath.Join(s.Dir, prefixDir)
	for dir != base && strings.HasPrefix(dir, base+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		parent := filepath.Dir(dir)
		if fsutil.SyncDir(parent) != nil {
			return
		}
		dir = parent
	}
}

func (s Store) check() error {
	if s.Dir == "" {
		return errors.New("trust store: no directory set")
	}
	return nil
}

// dirFor is the directory of a valid prefix's keys.
func (s Store) dirFor(prefix string) string {
	if prefix == "" {
		return filepath.Join(s.Dir, rootDir)
	}
	return filepath.Join(s.Dir, prefixDir, filepath.FromSlash(prefix))
}

// loadedKey is a trusted key file with its parsed keys.
type loadedKey struct {
	Key
	entities openpgp.EntityList
}

// loadDir reads the keys trusted for one valid prefix. Only files named
// like fingerprints are keys: the temporary files of atomic writes (and
// anything else left there) are not. A missing directory holds no keys.
func (s Store) loadDir(prefix string) ([]loadedKey, error) {
	dir := s.dirFor(prefix)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read keys trusted for %s: %w", describePrefix(prefix), err)
	}
	var out []loadedKey
	for _, ent := range entries {
		if !ent.Type().IsRegular() || !isFingerprintName(ent.Name()) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read trusted key %s: %w", path, err)
		}
		data, err := readLimited(f, maxKeySize, "key")
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read trusted key %s: %w", path, err)
		}
		el, err := parseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("read trusted key %s: %w", path, err)
		}
		out = append(out, loadedKey{
			Key:      Key{Prefix: prefix, Fingerprint: ent.Name(), Identities: identities(el), Path: path},
			entities: el,
		})
	}
	return out, nil
}

// parseKeys parses an armored or binary key file.
func parseKeys(data []byte) (openpgp.EntityList, error) {
	var (
		el  openpgp.EntityList
		err error
	)
	if isArmored(data) {
		var block *armor.Block
		block, err = armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: bad armor: %v", ErrInvalidKey, err)
		}
		if block.Type == openpgp.PrivateKeyType {
			return nil, fmt.Errorf("%w: this is a secret key; give the public key only", ErrInvalidKey)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("%w: armored %q, not %q", ErrInvalidKey, block.Type, openpgp.PublicKeyType)
		}
		el, err = openpgp.ReadKeyRing(block.Body)
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w (an armored %q or a binary key was expected): %v", ErrInvalidKey, openpgp.PublicKeyType, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%w: no key found", ErrInvalidKey)
	}
	for _, e := range el {
		if e.PrivateKey != nil {
			return nil, fmt.Errorf("%w: this is a secret key; give the public key only", ErrInvalidKey)
		}
	}
	return el, nil
}

// parseOneKey parses what Trust was given: exactly one public key.
func parseOneKey(data []byte) (*openpgp.Entity, error) {
	el, err := parseKeys(data)
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: the file holds %d keys; trust one key at a time", ErrInvalidKey, len(el))
	}
	return el[0], nil
}

// usable checks that a key can verify signatures at now: its primary key
// is neither revoked nor expired and it has a key flagged for signing.
func usable(e *openpgp.Entity, now time.Time) error {
	if e.Revoked(now) {
		return ErrKeyRevoked
	}
	selfSig, ident := e.PrimarySelfSignature()
	if selfSig == nil {
		return fmt.Errorf("%w: no valid self-signature", ErrInvalidKey)
	}
	if ident != nil && ident.Revoked(now) {
		return fmt.Errorf("%w: its primary identity %q is revoked", ErrKeyRevoked, ident.Name)
	}
	if e.PrimaryKey.CreationTime.After(now) {
		return fmt.Errorf("%w: it was created in the future (%s); check the clock",
			ErrInvalidKey, e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339))
	}
	if e.PrimaryKey.KeyExpired(selfSig, now) || selfSig.SigExpired(now) {
		if t, ok := expiry(e.PrimaryKey, selfSig); ok {
			return fmt.Errorf("%w on %s", ErrKeyExpired, t.UTC().Format(time.RFC3339))
		}
		return ErrKeyExpired
	}
	if _, ok := e.SigningKey(now); !ok {
		return fmt.Errorf("%w: it has no valid key that can sign (all signing subkeys expired or revoked, or none flagged for signing)", ErrInvalidKey)
	}
	return nil
}

// expiry is when pk expires according to sig, if it does.
func expiry(pk *packet.PublicKey, sig *packet.Signature) (time.Time, bool) {
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}, false
	}
	return pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second), true
}

func fingerprint(e *openpgp.Entity) string {
	return hex.EncodeToString(e.PrimaryKey.Fingerprint)
}

// identities lists the user IDs of the keys in el, each key's primary
// identity first, then the others sorted.
func identities(el openpgp.EntityList) []string {
	var out []string
	for _, e := range el {
		primary := ""
		if id := e.PrimaryIdentity(); id != nil {
			primary = id.Name
			out = append(out, primary)
		}
		var rest []string
		for name := range e.Identities {
			if name != primary {
				rest = append(rest, name)
			}
		}
		slices.Sort(rest)
		out = append(out, rest...)
	}
	return out
}

// ensureDir creates dir and its missing parents, syncing each parent in
// which it creates an entry so that the new directory survives a crash.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := ensureDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ensureDir(dir) // created meanwhile; check it is a directory
		}
		return err
	}
	return fsutil.SyncDir(parent)
}

func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", what, limit)
	}
	return data, nil
}

// isArmored reports whether data holds an ASCII-armored block, perhaps
// after some text (as in a key saved from a web page).
func isArmored(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN PGP "))
}

// isFingerprintName reports whether a file name is a fingerprint as Trust
// names key files: 40 or 64 lowercase hex digits.
func isFingerprintName(name string) bool {
	return (len(name) == 40 || len(name) == 64) && isHex(name) && strings.ToLower(name) == name
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && len(s)%2 == 0
}

func normalizeID(id string) string {
	id = strings.ToLower(strings.Join(strings.Fields(id), ""))
	return strings.TrimPrefix(id, "0x")
}

func describePrefix(prefix string) string {
	if prefix == "" {
		return "every image"
	}
	return fmt.Sprintf("prefix %q", prefix)
}
