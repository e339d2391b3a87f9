package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const copyBufSize = 1 << 20

// hasBlob tells whether the blob h is in the store. A blob in blobs/ is
// always whole and verified: it got there by rename after its check.
func (s *Store) hasBlob(h v1.Hash) bool {
	_, err := os.Stat(s.blobPath(h))
	return err == nil
}

// putBlob stores the content of r as blob want, of size bytes when size >= 0,
// refusing content that does not match.
func (s *Store) putBlob(ctx context.Context, r io.Reader, want v1.Hash, size int64) error {
	if err := checkDigest(want); err != nil {
		return err
	}
	if s.hasBlob(want) {
		return nil
	}
	limit := int64(-1)
	if size >= 0 {
		limit = size + 1 // one more byte shows a blob too long
	}
	tmp, got, n, err := s.writeTemp(ctx, r, limit)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	switch {
	case size >= 0 && n != size:
		return fmt.Errorf("blob %s: size %d, want %d", want, n, size)
	case got != want:
		return fmt.Errorf("blob %s: content has digest %s (corrupt or truncated)", want, got)
	}
	return s.commitBlob(tmp, got)
}

// putBlobAny stores the content of r under its own digest.
func (s *Store) putBlobAny(ctx context.Context, r io.Reader) (v1.Hash, int64, error) {
	tmp, got, n, err := s.writeTemp(ctx, r, -1)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer os.Remove(tmp)
	return got, n, s.commitBlob(tmp, got)
}

// writeTemp copies r (at most limit bytes when limit >= 0) into a new fsynced
// file in tmp/, hashing it on the way.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, limit int64) (path string, h v1.Hash, n int64, err error) {
	f, err := os.CreateTemp(s.path("tmp"), "blob-")
	if err != nil {
		return "", h, 0, fmt.Errorf("image store: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if limit >= 0 {
		r = io.LimitReader(r, limit)
	}
	d := sha256.New()
	buf := make([]byte, copyBufSize)
	n, err = io.CopyBuffer(io.MultiWriter(f, d), ctxReader{ctx, r}, buf)
	if err != nil {
		return "", h, n, err
	}
	if err := f.Sync(); err != nil {
		return "", h, n, err
	}
	return f.Name(), sha256Hash(d), n, nil
}

// commitBlob renames a verified temp file into blobs/. Two importers of the
// same blob both rename: the content is the same, either wins. The directory
// is synced once per import, before the image is committed (syncBlobs).
func (s *Store) commitBlob(tmp string, h v1.Hash) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.blobPath(h)); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

func sha256Hash(d hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(d.Sum(nil))}
}

// ctxReader stops a long copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
