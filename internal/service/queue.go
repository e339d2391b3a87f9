package service

import (
	"context"
	"sync"
)

// StateQueue hands unit states to one Subscribe channel in the order they
// were pushed, never blocking the pusher and never dropping a state: a
// reader that falls behind makes the queue grow. Both backends'
// subscriptions are one each.
type StateQueue struct {
	mu    sync.Mutex
	items []UnitState
	wake  chan struct{}
}

// NewStateQueue returns an empty queue.
func NewStateQueue() *StateQueue { return &StateQueue{wake: make(chan struct{}, 1)} }

// Push queues st.
func (q *StateQueue) Push(st UnitState) {
	q.mu.Lock()
	q.items = append(q.items, st)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Send sends the queued states to out, then those pushed later, until
// ctx ends.
func (q *StateQueue) Send(ctx context.Context, out chan<- UnitState) {
	for {
		q.mu.Lock()
		var next *UnitState
		if len(q.items) > 0 {
			next = &q.items[0]
			q.items = q.items[1:]
		}
		q.mu.Unlock()
		if next == nil {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case out <- *next:
		case <-ctx.Done():
			return
		}
	}
}
