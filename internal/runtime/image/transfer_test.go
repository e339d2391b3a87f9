package image

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	img := webImage(t)
	orig, err := s.Import(ctx, writeLayout(t, img, "example.com/web:1.0"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(orig.ID, "example.com/web:latest"); err != nil {
		t.Fatal(err)
	}

	t.Run("oci", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "out")
		if err := s.Export(ctx, "example.com/web:1.0", dest, "oci"); err != nil {
			t.Fatal(err)
		}
		// Exporting again into the same layout replaces, not duplicates.
		if err := s.Export(ctx, "example.com/web:1.0", dest, "oci"); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(dest)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		if len(im.Manifests) != 2 {
			t.Errorf("exported index.json lists %d images, want 2 (one per name)", len(im.Manifests))
		}
		s2 := openStore(t)
		back, err := s2.Fetch(ctx, "oci:"+dest+":example.com/web:1.0", FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if back.ID != orig.ID || !slices.Equal(back.Names, []string{"example.com/web:1.0"}) {
			t.Errorf("re-imported %s %q, want %s [example.com/web:1.0]", back.ID, back.Names, orig.ID)
		}
	})

	t.Run("docker-archive", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "out.tar")
		if err := s.Export(ctx, orig.ID[:19], dest, "docker-archive"); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t)
		back, err := s2.Import(ctx, dest, ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Layers, orig.Layers) {
			t.Errorf("re-imported layers %+v, want %+v", back.Layers, orig.Layers)
		}
		if want := []string{"example.com/web:1.0", "example.com/web:latest"}; !slices.Equal(back.Names, want) {
			t.Errorf("re-imported names %q, want %q", back.Names, want)
		}
		// ggcr reads it back too, as docker load would.
		ref, _ := name.NewTag("example.com/web:1.0")
		if _, err := tarball.ImageFromPath(dest, &ref); err != nil {
			t.Errorf("ggcr cannot read the exported archive: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		err := s.Export(ctx, "example.com/web:1.0", t.TempDir()+"/x", "zip")
		wantErr(t, err, "zip", "docker-archive or oci")
		notLayout := t.TempDir()
		os.WriteFile(filepath.Join(notLayout, "file"), nil, 0o644)
		err = s.Export(ctx, "example.com/web:1.0", notLayout, "oci")
		wantErr(t, err, notLayout, "neither empty nor an OCI image layout")
		err = s.Export(ctx, "nosuch", t.TempDir()+"/x.tar", "docker-archive")
		wantErr(t, err, "nosuch", "not found")
	})
}

// serveRegistry runs an in-process registry on loopback, behind auth when
// user is not empty, and returns its host:port.
func serveRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := reg
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			reg.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
}

// isolateAuth points every credential location at an empty directory.
func isolateAuth(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	return dir
}

func TestFetchRegistry(t *testing.T) {
	isolateAuth(t)
	ctx := context.Background()
	host := serveRegistry(t, "", "")
	img := webImage(t)
	push(t, host+"/test/web:1.0", img)
	s := openStore(t)
	got, err := s.Fetch(ctx, "docker://"+host+"/test/web:1.0", FetchOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	checkWebImage(t, got, img, []string{host + "/test/web:1.0"})
	// A bare reference is a registry one; fetching again downloads nothing new.
	again, err := s.Fetch(ctx, host+"/test/web:1.0", FetchOptions{})
	if err != nil || again.ID != got.ID {
		t.Errorf("Fetch of a bare reference = %v, %v; want %s", again, err, got.ID)
	}
	// By digest: no name.
	byDigest, err := s.Fetch(ctx, host+"/test/web@"+got.ID, FetchOptions{})
	if err != nil || byDigest.ID != got.ID {
		t.Errorf("Fetch by digest = %v, %v; want %s", byDigest, err, got.ID)
	}
	_, err = s.Fetch(ctx, host+"/test/nosuch:1", FetchOptions{})
	wantErr(t, err, "fetch "+host+"/test/nosuch:1", "NAME_UNKNOWN")
}

func TestFetchRegistryAuth(t *testing.T) {
	dir := isolateAuth(t)
	ctx := context.Background()
	host := serveRegistry(t, "alice", "s3cret")
	img := webImage(t)
	push(t, host+"/private/web:1.0", img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	s := openStore(t)
	ref := host + "/private/web:1.0"
	_, err := s.Fetch(ctx, ref, FetchOptions{})
	wantErr(t, err, "fetch "+ref, "401 Unauthorized")

	// A containers auth file with another registry's entry first.
	authFile := filepath.Join(dir, "auth.json")
	cred := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	os.WriteFile(authFile, []byte(`{"auths":{"other.example.com":{"auth":"eDp5"},"`+host+`/private":{"auth":"`+cred+`"}}}`), 0o600)
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	got, err := s.Fetch(ctx, ref, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkWebImage(t, got, img, []string{ref})

	// The same credentials from the Docker config, after containers files
	// that have nothing for this registry.
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(dir, "absent.json"))
	os.MkdirAll(filepath.Join(dir, "config", "containers"), 0o700)
	os.WriteFile(filepath.Join(dir, "config", "containers", "auth.json"), []byte(`{"auths":{"other.example.com":{"auth":"eDp5"}}}`), 0o600)
	os.MkdirAll(filepath.Join(dir, "docker"), 0o700)
	os.WriteFile(filepath.Join(dir, "docker", "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+cred+`"}}}`), 0o600)
	s2 := openStore(t)
	if _, err := s2.Fetch(ctx, ref, FetchOptions{}); err != nil {
		t.Errorf("fetch with the Docker config's credentials: %v", err)
	}
}

func TestAuthKeys(t *testing.T) {
	for ref, want := range map[string][]string{
		"example.com:5000/a/b/c:1": {"example.com:5000/a/b/c", "example.com:5000/a/b", "example.com:5000/a", "example.com:5000"},
		"nginx":                    {"docker.io/library/nginx", "docker.io/library", "docker.io"},
	} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := authKeys(r.Context()); !slices.Equal(got, want) {
			t.Errorf("authKeys(%s) = %q, want %q", ref, got, want)
		}
	}
	auths, err := parseAuthFile([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"quay.io/ns":{"identitytoken":"tok"},"empty.io":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := auths["docker.io"]; got.Username != "u" || got.Password != "p" {
		t.Errorf("legacy Docker Hub key gave %+v, want u/p", got)
	}
	if got := auths["quay.io/ns"]; got.IdentityToken != "tok" {
		t.Errorf("namespace key gave %+v, want the identity token", got)
	}
	if _, ok := auths["empty.io"]; ok {
		t.Errorf("an empty entry counts as credentials")
	}
	if _, err := parseAuthFile([]byte(`{"auths":{"x.io":{"auth":"bm9jb2xvbg=="}}}`)); err == nil {
		t.Errorf("an auth without a colon was accepted")
	}
}

func TestFetchLocalForms(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	img := webImage(t)
	dir := writeLayout(t, img, "1.0")
	got, err := s.Fetch(ctx, "oci:"+dir+":1.0", FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A ref.name that is only a tag names the image after the layout directory.
	checkWebImage(t, got, img, []string{"localhost/layout:1.0"})
	if _, err := s.Fetch(ctx, "oci:"+dir, FetchOptions{}); err != nil {
		t.Errorf("oci: without a tag: %v", err)
	}
	_, err = s.Fetch(ctx, "oci:"+dir+":2.0", FetchOptions{})
	wantErr(t, err, dir, `no image tagged "2.0"`, "1.0")

	archive := writeArchive(t, img, "example.com/arch:1")
	got, err = s.Fetch(ctx, "docker-archive:"+archive, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"example.com/arch:1", "localhost/layout:1.0"}; !slices.Equal(got.Names, want) {
		t.Errorf("Names = %q, want %q (the same image, imported twice)", got.Names, want)
	}
	if _, err := s.Fetch(ctx, "docker-archive:"+archive+":example.com/arch:1", FetchOptions{}); err != nil {
		t.Errorf("docker-archive: with a name: %v", err)
	}
}

// An OCI layout inside a tar, as `skopeo copy ... oci-archive:` writes it.
func TestImportLayoutTar(t *testing.T) {
	img := webImage(t)
	dir := writeLayout(t, img, "example.com/web:1.0")
	path := filepath.Join(t.TempDir(), "web.tar")
	if err := tarDir(dir, path); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	got, err := s.Import(context.Background(), path, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkWebImage(t, got, img, []string{"example.com/web:1.0"})
}

func TestMultiArchIndex(t *testing.T) {
	ctx := context.Background()
	arm := webImage(t)
	s390 := imageOf(t, gzLayer(t, entry{name: "s390", body: "x"}))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: s390, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
	)
	dir := filepath.Join(t.TempDir(), "multi")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/multi:1"})); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	_, err = s.Fetch(ctx, "oci:"+dir, FetchOptions{Platform: "linux/riscv64"})
	wantErr(t, err, dir, "no image for linux/riscv64", "linux/arm64/v8", "linux/s390x")
	got, err := s.Fetch(ctx, "oci:"+dir, FetchOptions{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	checkWebImage(t, got, arm, []string{"example.com/multi:1"})

	isolateAuth(t)
	host := serveRegistry(t, "", "")
	r, _ := name.ParseReference(host + "/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Fetch(ctx, host+"/multi:1", FetchOptions{Platform: "linux/riscv64"})
	wantErr(t, err, host+"/multi:1", "no image for linux/riscv64", "linux/s390x")
	got, err = s.Fetch(ctx, host+"/multi:1", FetchOptions{Platform: "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != digestOf(t, s390) {
		t.Errorf("fetched %s for linux/s390x, want %s", got.ID, digestOf(t, s390))
	}
}
