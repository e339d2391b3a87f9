// Package pki holds atoll's cluster certificate authority and the TLS
// identities it issues: creating and loading the CA, issuing machine and
// client certificates, writing them to disk, checking an identity on disk,
// and turning one into a *tls.Config for a server or a client.
//
// # On-disk layout
//
// A CA directory holds the authority itself:
//
//	ca.crt    the CA certificate (0644)
//	ca.key    the CA private key (0600), never copied to machines
//
// An identity directory holds what one party needs to speak TLS, with the
// CA certificate copied beside it so the directory is self-contained:
//
//	ca.crt                    the CA certificate (0644)
//	node.crt, node.key        a machine's identity (MachineFiles)
//	client.crt, client.key    a client's identity, such as the CLI (ClientFiles)
//
// Keys are PKCS#8 PEM ("PRIVATE KEY") and are written 0600; directories are
// created 0700. Every write goes through fsutil.WriteFileAtomic, so a crash
// leaves each file either whole or as it was. The files of an identity are
// written one after the other, not as one unit; Check notices a set left
// mismatched by a crash in between.
//
// # Algorithms and lifetimes
//
// All keys are ECDSA on P-256. They are small (a certificate fits in one
// packet), cheap to generate on a booting machine, fast to handshake with,
// and they are what etcd's and Kubernetes' certificate tooling default to,
// so operators' existing tools read them. Serial numbers are 128 random
// bits.
//
// The CA lives 10 years by default: it is created once per cluster and
// replacing it means re-issuing every identity. Leaf certificates live
// 2 years by default, never longer than the CA that signed them, and start
// a few minutes in the past so that machines whose clocks disagree slightly
// still accept a certificate issued a moment ago. A machine certificate is
// issued for both server and client use, because etcd presents the same
// certificate on its client port and, as a client certificate, to its
// peers.
//
// Leaf certificates carry the key usages DigitalSignature and
// KeyEncipherment. KeyEncipherment means nothing for an ECDSA key; it is set
// because it is part of atoll's certificate contract and older tools that
// expect it keep working, and Go's TLS stack ignores it.
//
// # Errors
//
// Errors about a file are *fs.PathError values whose Path is the file at
// fault (for example the key that does not match its certificate, or the
// certificate that does not chain to the CA), so the message names it and
// callers can recover it with errors.As. CreateCA's refusal to overwrite
// wraps ErrExists.
//
// # Imports
//
// This package imports only the standard library and
// atoll.dev/atoll/internal/fsutil. It must not import any other atoll
// package or any third-party module: every part of atoll that speaks TLS
// depends on it.
package pki
