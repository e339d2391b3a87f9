package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"atoll.dev/atoll/internal/fsutil"
)

// Backup streams a consistent snapshot of the store from one member that
// cli reaches into path. The file appears only once complete and synced: a
// crash or an error leaves whatever path held before. It returns the
// snapshot's size in bytes.
func Backup(ctx context.Context, cli *clientv3.Client, path string) (int64, error) {
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	defer rc.Close()
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, rc)
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: receive snapshot: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	return n, fsutil.SyncDir(dir)
}

// RestoreOptions says which new one-member cluster a snapshot becomes.
type RestoreOptions struct {
	Snapshot string
	// DataDir is the member's data directory. Whatever it holds is moved
	// aside to DataDir.replaced-<time>, never deleted.
	DataDir      string
	Name         string
	PeerURL      string
	ClusterToken string
}

// Restore turns a snapshot taken by Backup (or etcdctl snapshot save) into
// the data directory of a new one-member cluster, checking the snapshot's
// integrity hash first. Start the member on that directory, then grow the
// cluster with Join. The new directory is built beside the target and
// renamed into place, so a crash leaves either the old state or the new.
// It returns where the old data directory was moved, if there was one.
func Restore(opts RestoreOptions) (movedAside string, err error) {
	if opts.ClusterToken == "" {
		opts.ClusterToken = DefaultClusterToken
	}
	if _, err := os.Stat(opts.Snapshot); err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	parent := filepath.Dir(opts.DataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(opts.DataDir)+".restore-*")
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	defer os.RemoveAll(staging)
	out := filepath.Join(staging, "data")
	err = snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        opts.Snapshot,
		Name:                opts.Name,
		OutputDataDir:       out,
		PeerURLs:            []string{opts.PeerURL},
		InitialCluster:      opts.Name + "=" + opts.PeerURL,
		InitialClusterToken: opts.ClusterToken,
	})
	if err != nil {
		return "", fmt.Errorf("store: restore %s: %w", opts.Snapshot, err)
	}
	if err := os.Chmod(out, 0o700); err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	if _, err := os.Stat(opts.DataDir); err == nil {
		movedAside = fmt.Sprintf("%s.replaced-%s", opts.DataDir, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(opts.DataDir, movedAside); err != nil {
			return "", fmt.Errorf("store: restore: move old data aside: %w", err)
		}
	}
	if err := os.Rename(out, opts.DataDir); err != nil {
		return movedAside, fmt.Errorf("store: restore: %w", err)
	}
	return movedAside, fsutil.SyncDir(parent)
}
