// Package layer applies one OCI image layer, an uncompressed tar stream, to a
// directory on disk, and does so safely for layers that come from anywhere.
//
// Apply has two modes. Flatten applies a layer on top of the layers already
// unpacked into the same directory, turning OCI whiteouts into deletions.
// Overlay unpacks a layer alone into an empty directory that becomes one lower
// layer of an overlayfs mount, turning whiteouts into what overlayfs reads:
// 0/0 character devices and the trusted.overlay.opaque xattr.
//
// Diff goes the other way: it writes the changes an overlayfs upper
// directory holds (an app's writes over its image) as one layer, turning
// overlayfs's whiteouts and opaque directories back into OCI's, for
// `atoll pod export`.
//
// It imports nothing from atoll.
//
// # Why our own code
//
// go-containerregistry's mutate.Extract is the obvious library to reach for,
// but it does a different job: it walks the layers newest-first and produces a
// flattened tar stream, deciding what is hidden from the names it has already
// seen. It has had bugs with hardlinks and opaque whiteouts, and writing that
// stream to disk safely, which is the hard part, is left to the caller. We
// need per-layer directories (for overlayfs) as much as a flattened root, and
// the safety rules below, so the unpacker is ours.
//
// # Safety
//
// Nothing Apply writes can land outside dir, whatever the tar says:
//
//   - Every path is resolved inside dir, the way openat2(2) does with
//     RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: a symlink met on the way, absolute
//     or relative, is followed as if dir were "/", and ".." stops at dir. Where
//     openat2 is missing (Linux before 5.6, or a seccomp filter refusing it)
//     the same resolution is done one component at a time with O_NOFOLLOW.
//     So a layer holding `evil -> /etc` and then `evil/passwd` writes
//     dir/etc/passwd: it is contained, not refused, because absolute symlinks
//     such as /var/run -> /run are ordinary in images and later layers write
//     through them.
//   - Every change is made with the *at system calls on a directory file
//     descriptor and the final name, never following a symlink in the final
//     component: an entry that replaces a symlink unlinks it first.
//   - An entry name is cleaned lexically: a leading "/" is dropped, so
//     "/etc/x" lands at dir/etc/x, and "a/../b" is "b". A name whose ".."
//     climbs above the root ("../x", "a/../../x") is refused with ErrEscape
//     rather than cleaned to stay inside, because no image builder produces
//     one and it is the classic sign of a hostile layer.
//   - A hardlink's target is resolved inside dir like any other name; a
//     target that climbs out, is missing or is a directory is refused with
//     ErrHardlinkTarget.
//   - Character and block devices are never created: a container gets its
//     devices from the runtime, not from an image. They are counted in
//     Stats.SkippedDevices.
//   - xattrs are taken from the PAX records SCHILY.xattr.*, and only in the
//     user.* (regular files and directories), security.capability and
//     trusted.* namespaces. trusted.overlay.* is never taken from a layer,
//     since those xattrs would steer overlayfs; only Overlay mode sets
//     trusted.overlay.opaque itself. When the caller is not root, an xattr
//     that the kernel refuses with EPERM or ENOTSUP is skipped rather than
//     failing the layer, so a rootless unpack still works, without file
//     capabilities.
//
// # Choices
//
// GNU sparse entries are refused (ErrInvalidEntry): archive/tar expands
// their holes into zeros with no way to skip them, so a 2 KiB entry can
// stand for a terabyte, and no image builder writes them.
//
// Directory modes and times are set after the whole stream is written,
// deepest first: writing children changes a directory's mtime, and a
// read-only directory (0555) in the layer must still receive its children
// when we are not root. A directory over an existing directory keeps it and
// updates its metadata (the OCI rule); any other entry replaces what is there,
// removing a directory tree if need be. Parent directories that the layer
// does not list are created 0755 and owned by the caller.
//
// In Flatten mode a whiteout hides only what lower layers put there, as the
// OCI image spec says: what this layer itself writes survives a whiteout or
// an opaque marker of the same layer, whatever their order in the stream.
// Reserved ".wh..wh.*" names other than the opaque marker (aufs metadata such
// as .wh..wh.plnk) are ignored.
//
// Without root, a directory that a lower layer left without write
// permission for its owner cannot receive this layer's entries (EACCES);
// rootless callers should expect that of some images.
//
// The threat is the tar stream. dir is assumed not to be changed by anyone
// else while Apply runs; the few calls that follow a final symlink (fchmodat)
// do so on a name this process created or checked a moment before.
//
// # Speed
//
// Apply is on the first-run path of `atoll pod run`. A regular file costs
// five system calls (openat, write, fchmod, utimensat, close) plus one write
// per MiB, copied through one 1 MiB buffer per Apply; the last few parent
// directories stay open, so a directory's entries, which tar streams list
// together, resolve their parent once. On tmpfs it unpacks a 50 MB layer of
// 3000 files about as fast as GNU tar and several times faster than umoci.
//
// Apply does not fsync: the caller calls Sync once when all layers are down.
// After an error dir holds a partial layer and should be thrown away.
package layer
