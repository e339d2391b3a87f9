// Package version holds atoll's version, set at build time with
// -ldflags "-X atoll.dev/atoll/internal/version.Version=...". It imports
// nothing.
package version

// Version is the release this binary was built as.
var Version = "0.1.0-dev"
