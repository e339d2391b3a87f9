package service

import (
	"context"
	"fmt"
	"testing"
)

// Pushes never wait for the reader, and the reader gets every state in
// order; Send returns when its context ends.
func TestStateQueue(t *testing.T) {
	q := NewStateQueue()
	for i := range 1000 {
		q.Push(UnitState{Name: fmt.Sprintf("u%d.service", i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan UnitState)
	done := make(chan struct{})
	go func() {
		q.Send(ctx, out)
		close(done)
	}()
	for i := range 1000 {
		if st := <-out; st.Name != fmt.Sprintf("u%d.service", i) {
			t.Fatalf("state %d is %s", i, st.Name)
		}
	}
	q.Push(UnitState{Name: "late.service"})
	if st := <-out; st.Name != "late.service" {
		t.Fatalf("state pushed while Send waits: %s", st.Name)
	}
	cancel()
	<-done
}
