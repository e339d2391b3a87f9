package builtin

import (
	"fmt"
	"sync"
)

// shared is what a manager's units share, made by New and released by
// Close once the units' loops have ended: the poller that waits on their
// processes and idle output, and the machine's cgroup hierarchies,
// described at the first start (a manager over a machine without cgroups
// still loads and lists units).
type shared struct {
	poller *poller

	mu          sync.Mutex
	hierarchies *hierarchies
}

func newShared() (*shared, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &shared{poller: p}, nil
}

// cgroup describes the cgroup at path.
func (s *shared) cgroup(path string) (*unitCgroup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hierarchies == nil {
		h, err := describeHierarchies()
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		s.hierarchies = h
	}
	return s.hierarchies.open(path), nil
}

func (s *shared) close() { s.poller.close() }
