package image

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Keychain finds registry credentials the way the containers tools (podman,
// skopeo, buildah) do, then as Docker does: the first of these files that
// has credentials for the registry (or a namespace of it) wins:
//
//  1. $REGISTRY_AUTH_FILE,
//  2. $XDG_RUNTIME_DIR/containers/auth.json,
//  3. $XDG_CONFIG_HOME/containers/auth.json ($HOME/.config/containers/auth.json),
//  4. the Docker config, $DOCKER_CONFIG/config.json or ~/.docker/config.json,
//     with its credential helpers.
//
// ggcr's authn.DefaultKeychain reads only one file, preferring the Docker
// config, and does not go on to the next file when the first has no entry
// for the registry; so 1-3 are read here, and 4 is left to it.
func Keychain() authn.Keychain { return containersKeychain{} }

type containersKeychain struct{}

func (containersKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	for _, file := range containersAuthFiles() {
		auth, ok, err := lookupAuthFile(file, target)
		if err != nil {
			return nil, err
		}
		if ok {
			return auth, nil
		}
	}
	return authn.DefaultKeychain.Resolve(target)
}

// containersAuthFiles lists the containers tools' auth files, in order.
func containersAuthFiles() []string {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".config")
		}
	}
	if cfg != "" {
		files = append(files, filepath.Join(cfg, "containers", "auth.json"))
	}
	return files
}

// authFile is the containers auth file format (containers-auth.json(5)),
// which is also the "auths" part of a Docker config.
type authFile struct {
	Auths map[string]authEntry `json:"auths"`
}

type authEntry struct {
	Auth          string `json:"auth"` // base64 of "user:password"
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// lookupAuthFile finds credentials for target in an auth file; a file that
// does not exist has none.
func lookupAuthFile(file string, target authn.Resource) (authn.Authenticator, bool, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth file %s: %w", file, err)
	}
	auths, err := parseAuthFile(b)
	if err != nil {
		return nil, false, fmt.Errorf("auth file %s: %w", file, err)
	}
	for _, key := range authKeys(target) {
		cfg, ok := auths[key]
		if !ok {
			continue
		}
		return authn.FromConfig(cfg), true, nil
	}
	return nil, false, nil
}

// parseAuthFile returns the credentials of an auth file by normalized key.
func parseAuthFile(b []byte) (map[string]authn.AuthConfig, error) {
	var f authFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	out := map[string]authn.AuthConfig{}
	for key, e := range f.Auths {
		cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: auth: %w", key, err)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("%s: auth: want base64 of user:password", key)
			}
			cfg.Username, cfg.Password = user, pass
		}
		if cfg == (authn.AuthConfig{}) {
			continue // an empty entry is no entry, as for the containers tools
		}
		out[normalizeAuthKey(key)] = cfg
	}
	return out, nil
}

// normalizeAuthKey turns a key of an auth file into "registry[/namespace]".
// A key with a scheme is the legacy form whose path says nothing
// ("https://index.docker.io/v1/"): only its host counts.
func normalizeAuthKey(key string) string {
	if rest, ok := strings.CutPrefix(key, "https://"); ok {
		key, _, _ = strings.Cut(rest, "/")
	} else if rest, ok := strings.CutPrefix(key, "http://"); ok {
		key, _, _ = strings.Cut(rest, "/")
	}
	key = strings.TrimSuffix(key, "/")
	return normalizeRegistry(key)
}

func normalizeRegistry(s string) string {
	reg, rest, _ := strings.Cut(s, "/")
	if reg == "index.docker.io" || reg == "registry-1.docker.io" {
		reg = "docker.io"
	}
	if rest == "" {
		return reg
	}
	return reg + "/" + rest
}

// authKeys lists the keys that can hold credentials for target, the most
// specific first: "reg/ns/repo", "reg/ns", "reg".
func authKeys(target authn.Resource) []string {
	full := normalizeRegistry(target.String())
	reg := normalizeRegistry(target.RegistryStr())
	if !strings.HasPrefix(full, reg) {
		full = reg
	}
	var keys []string
	for k := full; ; {
		keys = append(keys, k)
		i := strings.LastIndex(k, "/")
		if i < 0 || len(k[:i]) < len(reg) {
			break
		}
		k = k[:i]
	}
	return keys
}
