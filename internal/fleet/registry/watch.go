package registry

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Event is one change of a key in the registry.
type Event struct {
	Key      Key
	Deleted  bool
	Value    []byte // the new value; nil when deleted
	Revision int64  // the key's ModRevision
}

// Batch is what one watch response brings: the events of one or more
// revisions, in order. Err ends the watch; ErrCompacted means the watched
// revision is gone and the watcher must read a fresh snapshot.
type Batch struct {
	Events   []Event
	Revision int64
	Err      error
}

// watchBuffer is how many batches a watch holds for a reader that is
// busy: the reader takes all of them at once when it comes back (one
// reconcile for many changes), and the watch keeps reading etcd meanwhile.
const watchBuffer = 4096

// ErrCompacted means a watch started from a revision etcd has compacted.
var ErrCompacted = fmt.Errorf("registry: watch revision compacted")

// watch watches [key, end) from rev (end "" means key only with
// clientv3.WithPrefix semantics when prefix is true) and sends decoded
// batches until ctx ends or the watch fails; the channel closes after an
// error batch.
func (r *Registry) watch(ctx context.Context, rev int64, out chan<- Batch, key string, opts ...clientv3.OpOption) {
	opts = append(opts, clientv3.WithRev(rev), clientv3.WithPrevKV())
	wch := r.c.Watch(clientv3.WithRequireLeader(ctx), key, opts...)
	for resp := range wch {
		if resp.CompactRevision != 0 {
			send(ctx, out, Batch{Err: fmt.Errorf("%w (at %d)", ErrCompacted, resp.CompactRevision)})
			return
		}
		if err := resp.Err(); err != nil {
			send(ctx, out, Batch{Err: fmt.Errorf("registry watch: %w", err)})
			return
		}
		b := Batch{Revision: resp.Header.Revision}
		for _, ev := range resp.Events {
			k, err := r.ParseKey(ev.Kv.Key)
			if err != nil {
				continue // not ours to read; never let one bad key stop the watch
			}
			e := Event{Key: k, Revision: ev.Kv.ModRevision}
			if ev.Type == clientv3.EventTypeDelete {
				e.Deleted = true
			} else {
				e.Value = ev.Kv.Value
			}
			b.Events = append(b.Events, e)
		}
		if !send(ctx, out, b) {
			return
		}
	}
	if ctx.Err() == nil {
		send(ctx, out, Batch{Err: fmt.Errorf("registry watch: channel closed")})
	}
}

func send(ctx context.Context, out chan<- Batch, b Batch) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}
