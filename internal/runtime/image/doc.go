// Package image is the content-addressed image store of atoll's container
// runtime, after rkt's model on today's OCI formats: images are imported from
// OCI image layouts and docker-archive tars, fetched from registries, named
// and tagged like Docker images, exported again, garbage-collected, and
// unpacked into directories that a pod stacks with overlayfs.
//
// # Names
//
// An image is named like a Docker image, "example.com/web:1.0". Names are
// kept in their full form: a name without a tag gets ":latest", and a name
// without a registry is a Docker Hub name, so "web" is stored and shown as
// "docker.io/library/web:latest" and found again as "web". A name belongs to
// one image at a time: importing or tagging an image with a name another
// image has moves the name, and the other image stays, nameless, until it is
// removed by ID. An image is also reachable by its ID, the digest
// "sha256:<hex>" of its stored manifest, or by a unique prefix of the ID of at
// least 12 hex digits (with or without "sha256:"). An exact name wins over an
// ID prefix.
//
// Where the names come from: ImportOptions.Name when given; else the
// RepoTags of a docker-archive; else, for an OCI layout, the
// "io.containerd.image.name" annotation, or "org.opencontainers.image.ref.name"
// when it is a full name ("example.com/web:1.0"). A ref.name that is only a
// tag ("1.0") names the image "localhost/<layout directory or archive
// name>:1.0". A registry image is named by the reference it was fetched by
// (none when fetched by digest alone).
//
// # Formats
//
// OCI image layouts are read with ggcr's layout package (or, inside a tar,
// the same way), registry images with its remote package, and stored with
// their manifests as they are (OCI or Docker schema 2; schema 1, indexes of
// indexes deeper than 4 and non-image artifacts are refused). A
// docker-archive has no manifest of its own: its manifest.json is read as
// ggcr's tarball.Manifest and its layer files are streamed from the tar in
// one pass and stored as they are (gzip, zstd or plain tar); an OCI manifest
// is made for them, always the same for the same archive, so the image ID
// is too. A compressed layer of a docker-archive is checked against its
// DiffID when it is unpacked.
//
// # Layout on disk
//
//	<dir>/blobs/sha256/<hex>   blobs: manifests, configs, compressed layers
//	<dir>/layers/<hex>/        an unpacked layer, named by its DiffID (as root)
//	<dir>/rootfs/<hex>/        all layers of an image flattened, named by the
//	                           ChainID of its top layer (not root)
//	<dir>/refs.json            the images: ID, names, import time
//	<dir>/refs.lock            flock held while refs.json is rewritten
//	<dir>/store.lock           flock: shared by imports and unpacks, exclusive by GC
//	<dir>/locks/               flock per unpacked directory: layers-<hex>.lock,
//	                           rootfs-<hex>.lock
//	<dir>/tmp/                 staging: blob-*, unpack-*, del-*
//
// layers/, rootfs/ and tmp/ are mode 0700: unpacked layers keep the set-user-ID
// files of the image, which no local user must be able to reach.
//
// # Guarantees
//
// A blob is written to tmp/, fsynced, checked against its digest (and its
// size, when known) and renamed into blobs/. A layer is unpacked into a
// directory in tmp/, synced with syncfs(2) and renamed into layers/, so a
// reader never sees half a layer; its DiffID is checked while it is unpacked,
// which matters because unpacked layers are shared by DiffID between images.
// An image becomes visible only when refs.json, rewritten atomically under
// refs.lock, names its ID, after all its blobs are durable. So an import killed
// at any point (kill -9, power loss) leaves either the whole image or nothing
// visible: List and Get read refs.json only. Concurrent imports of one image
// by several processes are safe and converge on one image; concurrent unpacks
// of one layer happen once: the others wait for its lock and reuse it.
//
// GC takes store.lock exclusively, so it waits for the imports and unpacks
// running in any process to end; then every file in tmp/ is a leftover of a
// killed import or unpack, and GC removes them all, with the blobs and
// unpacked directories that no image refers to and that keep does not
// protect. It renames a directory into tmp/ before deleting it, so a GC killed
// in the middle leaves no half layer behind. Remove only drops names: disk
// space comes back with GC.
//
// # Unpacking
//
// RootfsLayers unpacks as root each layer alone into layers/<DiffID> in
// layer.Overlay mode (whiteouts become overlayfs markers), several layers at
// once, and returns one directory per layer, bottom first, for overlayfs
// lower dirs. Without root (no trusted.* xattrs, no chown) it applies all
// layers in layer.Flatten mode into one directory, rootfs/<ChainID>, and
// returns only that. Either way the directories are shared: nobody writes
// into them. GC asks keep about each by DirKey(dir); DirKeys(img) gives the
// keys beforehand, for a pod to record before it unpacks.
//
// Layers may be gzip, zstd or plain tar, told by their first bytes rather
// than their media type. A blob is streamed from disk through decompression
// and the DiffID hash into layer.Apply, never held in memory. gzip is
// decompressed with klauspost/compress (1.4 times as fast as compress/gzip in
// BenchmarkDecompress); its zstd decoder runs single-threaded, as layers are
// unpacked in parallel already. Decompressing in a goroutine of its own,
// ahead of layer.Apply, was measured and gained nothing: the file writes
// dominate.
//
// # Signatures
//
// When ImportOptions.Verify is not nil, the image is verified before anything
// is stored, and an image that fails stores nothing. What is signed:
//   - an OCI layout directory: the bytes of the image manifest, the blob
//     whose sha256 is the image ID (for a multi-arch index, the manifest of
//     the chosen platform);
//   - a registry image: the same, the manifest bytes whose sha256 is the ID;
//   - an archive file (a docker-archive, or an OCI layout as a tar): the
//     file itself, as rkt signed the .aci file.
//
// The signature is a detached OpenPGP signature, found at
// ImportOptions.Signature or else at the default place: the signed file's
// path plus ".asc", that is PATH.asc for an archive and
// DIR/blobs/sha256/<manifest-hex>.asc for an OCI layout directory. A registry
// image has no default: Signature must be given, or Verify must be nil. The
// verifier is asked once for each name the image would get (an image trusted
// for one name must not take another's), or once with "" when it gets none.
// A missing signature is ErrNoSignature; a failing one is the verifier's
// error wrapped with the image name.
//
// # Imports
//
// This package imports nothing from atoll but internal/fsutil and
// internal/runtime/layer: it must stay usable by the CLI and by pods alike.
package image
