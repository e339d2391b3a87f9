package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// flockRetry takes a flock, waiting as long as it takes; short waits only
// (refs.json is held for a read and a write).
func flockRetry(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// fileLock is a flock on a file of its own open file description, so it
// excludes other goroutines of this process as well as other processes. The
// kernel drops it when the process dies, so a killed import leaves no lock.
type fileLock struct{ f *os.File }

// lockFile takes a flock (unix.LOCK_SH or unix.LOCK_EX) on path, creating the
// file, and waits until it is free or ctx is done. It polls rather than
// blocks so that a cancelled context stops the wait.
func lockFile(ctx context.Context, path string, how int) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	delay := time.Millisecond
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return &fileLock{f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func (l *fileLock) unlock() { l.f.Close() }

// shared takes store.lock shared, as every import and unpack does for its
// whole length: GC, which takes it exclusively, then knows that nothing in
// tmp/ is in use and that no blob it deletes is about to be relied on.
func (s *Store) shared(ctx context.Context) (*fileLock, error) {
	return lockFile(ctx, s.path("store.lock"), unix.LOCK_SH)
}
