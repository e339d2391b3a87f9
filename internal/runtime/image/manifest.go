package image

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Size limits of the JSON documents read whole into memory. The OCI
// distribution spec lets registries refuse manifests over 4 MiB.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 16 << 20
	maxIndexDepth   = 4
)

// layerMediaTypes are the layer blobs this store can unpack.
var layerMediaTypes = map[types.MediaType]bool{
	types.OCILayer:                true,
	types.OCILayerZStd:            true,
	types.OCIUncompressedLayer:    true,
	types.DockerLayer:             true,
	types.DockerUncompressedLayer: true,
}

// parseManifest parses an image manifest (OCI or Docker schema 2) and checks
// that it is one: indexes, schema 1 and artifacts are refused with a clear
// error.
func parseManifest(b []byte) (*v1.Manifest, error) {
	probe, err := probeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalid, err)
	}
	switch {
	case probe.isIndex():
		return nil, fmt.Errorf("%w: an index, not an image manifest", ErrInvalid)
	case probe.MediaType.IsSchema1() || probe.SchemaVersion == 1:
		return nil, fmt.Errorf("%w: docker schema 1 manifests are not supported", ErrInvalid)
	case probe.MediaType != "" && probe.MediaType != types.OCIManifestSchema1 && probe.MediaType != types.DockerManifestSchema2:
		return nil, fmt.Errorf("%w: manifest media type %q", ErrInvalid, probe.MediaType)
	case probe.SchemaVersion != 2:
		return nil, fmt.Errorf("%w: manifest schemaVersion %d, want 2", ErrInvalid, probe.SchemaVersion)
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalid, err)
	}
	if err := checkManifest(m); err != nil {
		return nil, err
	}
	return m, nil
}

// manifestProbe is what tells the kinds of manifests apart.
type manifestProbe struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Manifests     json.RawMessage `json:"manifests"`
}

func probeManifest(b []byte) (manifestProbe, error) {
	var p manifestProbe
	err := json.Unmarshal(b, &p)
	return p, err
}

// isIndex tells an index: by its media type, or by its list of manifests
// when it has none (the OCI spec makes mediaType optional).
func (p manifestProbe) isIndex() bool {
	return p.MediaType.IsIndex() || (p.MediaType == "" && p.Manifests != nil)
}

func checkManifest(m *v1.Manifest) error {
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return fmt.Errorf("%w: not a container image: config media type %q", ErrInvalid, m.Config.MediaType)
	}
	if err := checkDigest(m.Config.Digest); err != nil {
		return fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	for i, l := range m.Layers {
		if !layerMediaTypes[l.MediaType] {
			return fmt.Errorf("%w: layer %d: unsupported media type %q", ErrInvalid, i, l.MediaType)
		}
		if err := checkDigest(l.Digest); err != nil {
			return fmt.Errorf("%w: layer %d: %v", ErrInvalid, i, err)
		}
		if l.Size < 0 {
			return fmt.Errorf("%w: layer %d: size %d", ErrInvalid, i, l.Size)
		}
	}
	return nil
}

// checkDigest accepts sha256 digests only: the store's paths are built from
// them, so anything else (another algorithm, "../x") is refused.
func checkDigest(h v1.Hash) error {
	if h.Algorithm != "sha256" || !isHex(h.Hex, 64) {
		return fmt.Errorf("digest %q: want sha256:<64 hex digits>", h.String())
	}
	return nil
}

func isHex(s string, n int) bool {
	if n >= 0 && len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// describe builds an Image (without ID, names and import time) from a parsed
// manifest and the config bytes, checking that they agree.
func describe(m *v1.Manifest, config []byte) (*Image, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: config lists %d diff_ids, manifest %d layers", ErrInvalid, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	img := &Image{Config: *cfg, Created: cfg.Created.Time}
	for i, l := range m.Layers {
		if err := checkDigest(cfg.RootFS.DiffIDs[i]); err != nil {
			return nil, fmt.Errorf("%w: diff_id %d: %v", ErrInvalid, i, err)
		}
		img.Layers = append(img.Layers, Layer{
			Digest:    l.Digest.String(),
			DiffID:    cfg.RootFS.DiffIDs[i].String(),
			Size:      l.Size,
			MediaType: string(l.MediaType),
		})
		img.Size += l.Size
	}
	return img, nil
}
