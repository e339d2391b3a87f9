// Package testutil holds helpers shared by the tests of several parts.
// Only _test files import it, so none of it ships in the binary. It
// imports only the standard library.
package testutil

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that is safe to write from the goroutines of a
// running daemon or command while a test reads what it has written so far.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
