package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkEmpty fails unless the store shows no image and holds no blob.
func checkEmpty(t *testing.T, s *Store) {
	t.Helper()
	list, err := s.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; want nothing", list, err)
	}
	if files := storeFiles(t, s, "blobs"); !slices.Equal(files, []string{"sha256"}) {
		t.Errorf("blobs/ holds %q, want nothing", files)
	}
	if files := storeFiles(t, s, "tmp"); len(files) != 0 {
		t.Errorf("tmp/ holds %q, want nothing", files)
	}
}

func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	img := webImage(t)
	archive, err := os.ReadFile(writeArchive(t, img, "example.com/web:1"))
	if err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(tmp, "emptydir")
	os.Mkdir(emptyDir, 0o755)

	// A layout whose layer blob does not match its digest.
	corrupt := writeLayout(t, img, "example.com/web:1")
	l, _ := img.Layers()
	d, _ := l[1].Digest()
	blob := filepath.Join(corrupt, "blobs", "sha256", d.Hex)
	b, _ := os.ReadFile(blob)
	b[len(b)/2] ^= 0xff
	os.WriteFile(blob, b, 0o644)

	// A layout with a manifest whose config is missing.
	noConfig := writeLayout(t, img, "example.com/web:1")
	cd, _ := img.ConfigName()
	os.Remove(filepath.Join(noConfig, "blobs", "sha256", cd.Hex))

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"not an image", write("notes.txt", []byte("hello, world\n")), []string{"notes.txt", "not a tar archive"}},
		{"empty file", write("empty.tar", nil), []string{"empty.tar", "empty archive"}},
		{"a tar of something else", write("other.tar", tarOf(t, entry{name: "README", body: "hi"})), []string{"other.tar", "no manifest.json (docker-archive) nor index.json"}},
		{"truncated archive", write("truncated.tar", archive[:len(archive)*2/3]), []string{"truncated.tar", "truncated"}},
		{"bad manifest.json", write("badjson.tar", tarOf(t, entry{name: "manifest.json", body: "{"})), []string{"badjson.tar", "manifest.json"}},
		{"missing layer", write("nolayer.tar", tarOf(t,
			entry{name: "c.json", body: `{"rootfs":{"type":"layers","diff_ids":["sha256:` + sha256Of(nil).Hex + `"]}}`},
			entry{name: "manifest.json", body: `[{"Config":"c.json","Layers":["gone.tar"]}]`})), []string{"nolayer.tar", "gone.tar", "not found"}},
		{"empty directory", emptyDir, []string{"emptydir", "without index.json"}},
		{"missing path", filepath.Join(tmp, "absent"), []string{"absent", "no such file"}},
		{"blob digest mismatch", corrupt, []string{corrupt, d.String(), "corrupt or truncated"}},
		{"missing config", noConfig, []string{noConfig, "config", cd.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Import(ctx, tc.path, ImportOptions{})
			wantErr(t, err, tc.want...)
			// Blobs stored before the bad one may stay, unseen, until GC.
			if list, err := s.List(); err != nil || len(list) != 0 {
				t.Errorf("List = %v, %v; want nothing", list, err)
			}
			if _, err := s.GC(ctx, nil); err != nil {
				t.Fatal(err)
			}
			checkEmpty(t, s)
		})
	}
}

// An image whose config lies about a layer's DiffID must not unpack: layers
// are shared by DiffID.
func TestDiffIDMismatch(t *testing.T) {
	ctx := context.Background()
	real := gzLayer(t, entry{name: "good", body: "good\n"})
	evil := gzLayer(t, entry{name: "good", body: "evil\n"})
	img := imageOf(t, evil)
	cfg, _ := img.ConfigFile()
	realDiff, _ := real.DiffID()
	cfg = cfg.DeepCopy()
	cfg.RootFS.DiffIDs = []v1.Hash{realDiff}
	img = withConfig(t, img, cfg)
	s := openStore(t)
	got, err := s.Import(ctx, writeLayout(t, img, "example.com/evil:1"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.RootfsLayers(ctx, got)
	wantErr(t, err, realDiff.String(), "uncompressed content has digest")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v is not ErrInvalid", err)
	}
	if files := storeFiles(t, s, "layers"); len(files) != 0 {
		t.Errorf("layers/ holds %q after a refused layer, want nothing", files)
	}
	if files := storeFiles(t, s, "rootfs"); len(files) != 0 {
		t.Errorf("rootfs/ holds %q after a refused layer, want nothing", files)
	}
	if files := storeFiles(t, s, "tmp"); len(files) != 0 {
		t.Errorf("tmp/ holds %q after a refused layer, want nothing", files)
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	img := webImage(t)
	manifest, _ := img.RawManifest()
	id := digestOf(t, img)

	t.Run("layout accepted", func(t *testing.T) {
		s := openStore(t)
		dir := writeLayout(t, img, "example.com/web:1.0")
		sig := filepath.Join(dir, "blobs", "sha256", id[7:]+".asc")
		os.WriteFile(sig, []byte("SIG"), 0o644)
		v := &fakeVerifier{}
		if _, err := s.Import(ctx, dir, ImportOptions{Verify: v}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.names, []string{"example.com/web:1.0"}) || !bytes.Equal(v.signed[0], manifest) || v.sigs[0] != "SIG" {
			t.Errorf("verifier saw names %q, signed %d bytes, signature %q; want the name, the manifest (%d bytes) and SIG", v.names, len(v.signed[0]), v.sigs, len(manifest))
		}
	})

	t.Run("layout refused", func(t *testing.T) {
		s := openStore(t)
		dir := writeLayout(t, img, "example.com/web:1.0")
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", id[7:]+".asc"), []byte("SIG"), 0o644)
		_, err := s.Import(ctx, dir, ImportOptions{Verify: &fakeVerifier{refuse: errBadSignature}})
		if !errors.Is(err, errBadSignature) {
			t.Errorf("refused import = %v, want the verifier's error", err)
		}
		wantErr(t, err, "image example.com/web:1.0")
		checkEmpty(t, s)
	})

	t.Run("layout unsigned", func(t *testing.T) {
		s := openStore(t)
		dir := writeLayout(t, img, "example.com/web:1.0")
		_, err := s.Import(ctx, dir, ImportOptions{Verify: &fakeVerifier{}})
		if !errors.Is(err, ErrNoSignature) {
			t.Errorf("unsigned import = %v, want ErrNoSignature", err)
		}
		want := "image example.com/web:1.0: no signature at " + filepath.Join(dir, "blobs", "sha256", id[7:]+".asc") + " (use --signature, or --insecure-options=image to skip)"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant    %s", err, want)
		}
		checkEmpty(t, s)
	})

	t.Run("archive with every name checked", func(t *testing.T) {
		s := openStore(t)
		path := writeArchive(t, img, "example.com/arch:1")
		archive, _ := os.ReadFile(path)
		os.WriteFile(path+".asc", []byte("ASIG"), 0o644)
		v := &fakeVerifier{}
		if _, err := s.Import(ctx, path, ImportOptions{Verify: v}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.names, []string{"example.com/arch:1"}) || !bytes.Equal(v.signed[0], archive) {
			t.Errorf("verifier saw names %q and %d signed bytes, want [example.com/arch:1] and the archive's %d", v.names, len(v.signed[0]), len(archive))
		}
		// An explicit signature path and name.
		other := filepath.Join(t.TempDir(), "other.sig")
		os.WriteFile(other, []byte("OSIG"), 0o644)
		v = &fakeVerifier{}
		if _, err := s.Import(ctx, path, ImportOptions{Verify: v, Signature: other, Name: "example.com/renamed:2"}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.names, []string{"example.com/renamed:2"}) || v.sigs[0] != "OSIG" {
			t.Errorf("verifier saw %q %q, want [example.com/renamed:2] [OSIG]", v.names, v.sigs)
		}
	})

	t.Run("archive refused", func(t *testing.T) {
		s := openStore(t)
		path := writeArchive(t, img, "example.com/arch:1")
		os.WriteFile(path+".asc", []byte("ASIG"), 0o644)
		_, err := s.Import(ctx, path, ImportOptions{Verify: &fakeVerifier{refuse: errBadSignature}})
		if !errors.Is(err, errBadSignature) {
			t.Errorf("refused import = %v, want the verifier's error", err)
		}
		checkEmpty(t, s)
	})

	t.Run("registry", func(t *testing.T) {
		isolateAuth(t)
		host := serveRegistry(t, "", "")
		push(t, host+"/web:1", img)
		s := openStore(t)
		_, err := s.Fetch(ctx, host+"/web:1", FetchOptions{ImportOptions: ImportOptions{Verify: &fakeVerifier{}}})
		if !errors.Is(err, ErrNoSignature) {
			t.Errorf("registry fetch without --signature = %v, want ErrNoSignature", err)
		}
		wantErr(t, err, host+"/web:1", "--signature")
		sig := filepath.Join(t.TempDir(), "web.asc")
		_, err = s.Fetch(ctx, host+"/web:1", FetchOptions{ImportOptions: ImportOptions{Verify: &fakeVerifier{}, Signature: sig}})
		wantErr(t, err, "no signature at "+sig)
		os.WriteFile(sig, []byte("RSIG"), 0o644)
		_, err = s.Fetch(ctx, host+"/web:1", FetchOptions{ImportOptions: ImportOptions{Verify: &fakeVerifier{refuse: errBadSignature}, Signature: sig}})
		if !errors.Is(err, errBadSignature) {
			t.Errorf("refused fetch = %v, want the verifier's error", err)
		}
		checkEmpty(t, s)
		v := &fakeVerifier{}
		if _, err := s.Fetch(ctx, host+"/web:1", FetchOptions{ImportOptions: ImportOptions{Verify: v, Signature: sig}}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.signed[0], manifest) || !slices.Equal(v.names, []string{host + "/web:1"}) {
			t.Errorf("verifier saw %q and %d bytes, want [%s/web:1] and the manifest", v.names, len(v.signed[0]), host)
		}
	})
}
