package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestMain lets the test binary act as another process importing into a
// store: the multi-process tests re-execute it with ATOLL_IMAGE_HELPER set.
func TestMain(m *testing.M) {
	if mode := os.Getenv("ATOLL_IMAGE_HELPER"); mode != "" {
		os.Exit(helperProcess(mode, os.Getenv("ATOLL_IMAGE_STORE"), os.Getenv("ATOLL_IMAGE_SOURCE")))
	}
	os.Exit(m.Run())
}

// importResult is what an importer saw: the image and the inode of each
// directory RootfsLayers gave it.
type importResult struct {
	ID     string
	Dirs   []string
	Inodes []uint64
}

func helperProcess(mode, storeDir, source string) int {
	s, err := Open(storeDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == "import" {
		_, err = s.Import(context.Background(), source, ImportOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	res, err := importAndUnpack(s, source)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func importAndUnpack(s *Store, source string) (importResult, error) {
	ctx := context.Background()
	img, err := s.Import(ctx, source, ImportOptions{})
	if err != nil {
		return importResult{}, err
	}
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		return importResult{}, err
	}
	res := importResult{ID: img.ID, Dirs: dirs}
	for _, d := range dirs {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return res, err
		}
		res.Inodes = append(res.Inodes, st.Ino)
	}
	return res, nil
}

// Four goroutines and two processes import and unpack the same image at
// once: one image results, and each layer directory is made once, so all
// see the same inodes.
func TestConcurrentImports(t *testing.T) {
	s := openStore(t)
	src := writeLayout(t, webImage(t), "example.com/web:1.0")
	var (
		mu      sync.Mutex
		results []importResult
		wg      sync.WaitGroup
	)
	record := func(res importResult, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Error(err)
			return
		}
		results = append(results, res)
	}
	for range 2 {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "ATOLL_IMAGE_HELPER=unpack", "ATOLL_IMAGE_STORE="+s.Dir(), "ATOLL_IMAGE_SOURCE="+src)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				record(importResult{}, fmt.Errorf("helper process: %v: %s", err, stderr.String()))
				return
			}
			var res importResult
			err = json.Unmarshal(out, &res)
			record(res, err)
		})
	}
	for range 4 {
		wg.Go(func() { record(importAndUnpack(s, src)) })
	}
	wg.Wait()
	if len(results) != 6 {
		t.Fatalf("%d importers succeeded, want 6", len(results))
	}
	for _, r := range results[1:] {
		if r.ID != results[0].ID || !slices.Equal(r.Dirs, results[0].Dirs) || !slices.Equal(r.Inodes, results[0].Inodes) {
			t.Errorf("importers disagree: %+v and %+v; want one image, each directory made once", r, results[0])
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Errorf("List = %d images, %v; want 1", len(list), err)
	}
	if files := storeFiles(t, s, "tmp"); len(files) != 0 {
		t.Errorf("tmp/ holds %q after the imports, want nothing", files)
	}
}

// An import killed at any point leaves leftovers that List ignores and GC
// removes, and nothing of the live images.
func TestInterruptedImport(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	live := importWeb(t, s)
	liveDirs, err := s.RootfsLayers(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	// What killed imports and unpacks leave: a partial blob, a half
	// unpacked layer (with a read-only directory in it), a whole blob and a
	// whole layer that no image refers to (killed before the commit).
	os.WriteFile(s.path("tmp", "blob-123"), []byte("partial"), 0o600)
	half := s.path("tmp", "unpack-456")
	os.MkdirAll(filepath.Join(half, "usr", "lib"), 0o755)
	os.WriteFile(filepath.Join(half, "usr", "lib", "x"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(half, "usr"), 0o555)
	orphan := sha256Of([]byte("orphan"))
	os.WriteFile(s.blobPath(orphan), []byte("orphan"), 0o644)
	orphanDir := s.path(unpackSub(s), orphan.Hex)
	os.MkdirAll(filepath.Join(orphanDir, "bin"), 0o755)
	os.WriteFile(s.path("locks", "layers-"+orphan.Hex+".lock"), nil, 0o600)

	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != live.ID {
		t.Fatalf("List = %v, %v; want only %s", list, err, live.ID)
	}
	st, err := s.GC(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Temp != 2 || st.Blobs != 1 || st.BlobBytes != 6 || st.Dirs != 1 {
		t.Errorf("GC stats = %+v, want 2 temp, 1 blob of 6 bytes, 1 dir", st)
	}
	for _, sub := range []string{"tmp", "locks"} {
		if files := storeFiles(t, s, sub); len(files) != 0 {
			t.Errorf("%s/ holds %q after GC, want nothing", sub, files)
		}
	}
	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("orphan layer %s: %v after GC, want it gone", orphanDir, err)
	}
	got, err := s.Get("example.com/web:1.0")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.RootfsLayers(ctx, got)
	if err != nil || !slices.Equal(dirs, liveDirs) {
		t.Errorf("RootfsLayers after GC = %q, %v; want %q", dirs, err, liveDirs)
	}
	checkMergedWebLayers(t, s, dirs)
}

// unpackSub is where a store puts unpacked directories.
func unpackSub(s *Store) string {
	if s.UnpackMode() == 0 {
		return "rootfs"
	}
	return "layers"
}

func checkMergedWebLayers(t *testing.T, s *Store, dirs []string) {
	t.Helper()
	if unpackSub(s) == "rootfs" {
		checkMergedWeb(t, dirs[0])
		return
	}
	checkFile(t, filepath.Join(dirs[0], "bin", "web"), "web v1\n")
}

// GC keeps what keep protects, even of removed images, and drops the rest.
func TestGCKeep(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	img := importWeb(t, s)
	dirs, err := s.RootfsLayers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(img.ID); err != nil {
		t.Fatal(err)
	}
	var asked []string
	keep := func(key string) bool {
		asked = append(asked, key)
		return true
	}
	st, err := s.GC(ctx, keep)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest, the config and two layers go; the directories stay.
	if st.Blobs != 4 || st.Dirs != 0 {
		t.Errorf("GC stats = %+v, want 4 blobs and no dir", st)
	}
	var keys []string
	for _, d := range dirs {
		keys = append(keys, DirKey(d))
	}
	if !slices.Equal(keys, s.DirKeys(img)) {
		t.Errorf("DirKeys = %q, want the keys of RootfsLayers' directories %q", s.DirKeys(img), keys)
	}
	slices.Sort(keys)
	slices.Sort(asked)
	if !slices.Equal(asked, keys) {
		t.Errorf("keep was asked about %q, want %q", asked, keys)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("kept %s: %v", d, err)
		}
	}
	st, err = s.GC(ctx, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if st.Dirs != len(dirs) {
		t.Errorf("GC stats = %+v, want %d dirs deleted", st, len(dirs))
	}
	for _, sub := range []string{"layers", "rootfs", "tmp"} {
		if files := storeFiles(t, s, sub); len(files) != 0 {
			t.Errorf("%s/ holds %q after GC, want nothing", sub, files)
		}
	}
}

// A real kill -9 in the middle of an import of a big archive.
func TestKilledImport(t *testing.T) {
	s := openStore(t)
	img, err := random.Image(48<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	src := writeArchive(t, img, "example.com/big:1")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ATOLL_IMAGE_HELPER=import", "ATOLL_IMAGE_STORE="+s.Dir(), "ATOLL_IMAGE_SOURCE="+src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	waitKill(t, cmd, done, s.path("tmp"))
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) > 1 || (len(list) == 1 && list[0].ID != digestOfArchive(t, s, src)) {
		t.Errorf("List after a killed import = %+v, want nothing or the whole image", list)
	}
	if _, err := s.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if files := storeFiles(t, s, "tmp"); len(files) != 0 {
		t.Errorf("tmp/ holds %q after GC, want nothing", files)
	}
	if _, err := s.Import(context.Background(), src, ImportOptions{}); err != nil {
		t.Errorf("import after a killed one: %v", err)
	}
}

// digestOfArchive is the ID an archive imports as, found by importing it
// into another store.
func digestOfArchive(t *testing.T, _ *Store, src string) string {
	t.Helper()
	img, err := openStore(t).Import(context.Background(), src, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// waitKill kills the process with SIGKILL as soon as it has begun to write
// into dir, and waits for it to end.
func waitKill(t *testing.T, cmd *exec.Cmd, done <-chan struct{}, dir string) {
	for {
		select {
		case <-done:
			t.Log("the import ended before it could be killed; checking its result")
			return
		default:
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return
		}
		time.Sleep(time.Millisecond)
	}
}
