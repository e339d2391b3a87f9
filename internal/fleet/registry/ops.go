package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"atoll.dev/atoll/internal/unit"
)

// Registry reads and writes fleet's keys under one prefix. It is safe for
// concurrent use.
type Registry struct {
	c      *clientv3.Client
	prefix string
}

// New returns the registry under prefix ("" means DefaultPrefix).
func New(c *clientv3.Client, prefix string) *Registry {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Registry{c: c, prefix: prefix}
}

// Client is the etcd client the registry uses.
func (r *Registry) Client() *clientv3.Client { return r.c }

// Prefix is where the registry's keys live.
func (r *Registry) Prefix() string { return r.prefix }

// The key spaces.
const (
	unitsDir    = "units/"
	contentDir  = "content/"
	scheduleDir = "schedule/"
	unplacedDir = "unplaced/"
	machinesDir = "machines/"
	metadataDir = "metadata/"
	statesDir   = "agent-states/" // sorts first: the engine watches what follows
	engineDir   = "engine/"
	placedDir   = "placed/" // an index of schedule/ by unit
)

func (r *Registry) unitKey(name string) string         { return r.prefix + unitsDir + name }
func (r *Registry) contentKey(h unit.Hash) string      { return r.prefix + contentDir + h.String() }
func (r *Registry) scheduleKey(m, u string) string     { return r.prefix + scheduleDir + m + "/" + u }
func (r *Registry) placedKey(u, m string) string       { return r.prefix + placedDir + u + "/" + m }
func (r *Registry) unplacedKey(u string) string        { return r.prefix + unplacedDir + u }
func (r *Registry) machineKey(m string) string         { return r.prefix + machinesDir + m }
func (r *Registry) metadataKey(m, key string) string   { return r.prefix + metadataDir + m + "/" + key }
func (r *Registry) stateKey(m, u string) string        { return r.prefix + statesDir + m + "/" + u }
func (r *Registry) dir(d string) string                { return r.prefix + d }
func (r *Registry) machineScheduleDir(m string) string { return r.prefix + scheduleDir + m + "/" }

// ElectionPrefix is where the engine's election lives.
func (r *Registry) ElectionPrefix() string { return r.prefix + engineDir }

// Submit stores f's text under its hash (unless it is there) and
// units/<name> with the desired state, in one transaction. An existing unit takes the new file (a new
// hash) and the new desired state.
func (r *Registry) Submit(ctx context.Context, f *unit.File, desired DesiredState) error {
	if f == nil || f.Name == "" {
		return fmt.Errorf("registry: submit: a unit needs a name")
	}
	if _, err := ParseDesiredState(string(desired)); err != nil {
		return fmt.Errorf("submit %s: %w", f.Name, err)
	}
	h := f.Hash()
	u, err := json.Marshal(Unit{Name: f.Name, Hash: h, DesiredState: desired})
	if err != nil {
		return err
	}
	// The file is written only when it is not there yet: instances of a
	// template share theirs. (DeleteFile refuses to delete a file while a
	// unit it has not seen may name it.)
	content := r.contentKey(h)
	err = retry(ctx, func() error {
		_, err := r.c.Txn(ctx).
			If(clientv3.Compare(clientv3.Version(content), ">", 0)).
			Then(clientv3.OpPut(r.unitKey(f.Name), string(u))).
			Else(clientv3.OpPut(content, string(f.Bytes())), clientv3.OpPut(r.unitKey(f.Name), string(u))).
			Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("submit %s: %w", f.Name, err)
	}
	return nil
}

// SetDesiredState changes a unit's desired state.
func (r *Registry) SetDesiredState(ctx context.Context, name string, desired DesiredState) error {
	if _, err := ParseDesiredState(string(desired)); err != nil {
		return fmt.Errorf("unit %s: %w", name, err)
	}
	for {
		u, err := r.Unit(ctx, name)
		if err != nil {
			return err
		}
		if u.DesiredState == desired {
			return nil
		}
		u.DesiredState = desired
		b, err := json.Marshal(u)
		if err != nil {
			return err
		}
		resp, err := r.c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(r.unitKey(name)), "=", u.Revision)).
			Then(clientv3.OpPut(r.unitKey(name), string(b))).Commit()
		if err != nil {
			return fmt.Errorf("unit %s: %w", name, err)
		}
		if resp.Succeeded {
			return nil
		}
	}
}

// Destroy removes a unit; the engine then unschedules it.
func (r *Registry) Destroy(ctx context.Context, name string) error {
	resp, err := r.c.Delete(ctx, r.unitKey(name))
	if err != nil {
		return fmt.Errorf("unit %s: %w", name, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("unit %s: %w", name, ErrNotFound)
	}
	return nil
}

// Unit reads one unit.
func (r *Registry) Unit(ctx context.Context, name string) (Unit, error) {
	resp, err := r.c.Get(ctx, r.unitKey(name))
	if err != nil {
		return Unit{}, fmt.Errorf("unit %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return Unit{}, fmt.Errorf("unit %s: %w", name, ErrNotFound)
	}
	return DecodeUnit(Key{Kind: KindUnit, Unit: name}, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// File reads the unit file with hash h, parsed under the given unit name.
func (r *Registry) File(ctx context.Context, name string, h unit.Hash) (*unit.File, error) {
	resp, err := r.c.Get(ctx, r.contentKey(h))
	if err != nil {
		return nil, fmt.Errorf("unit file %s: %w", h, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("unit file %s of %s: %w", h, name, ErrNotFound)
	}
	return ParseFile(name, resp.Kvs[0].Value)
}

// ParseFile reads a unit file as stored under content/.
func ParseFile(name string, text []byte) (*unit.File, error) {
	f, _, err := unit.Parse(name, bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("registry: unit file of %s: %w", name, err)
	}
	return f, nil
}

// Snapshot reads everything at one revision.
func (r *Registry) Snapshot(ctx context.Context) (*Snapshot, error) {
	return r.snapshot(ctx, append(engineDirs, statesDir))
}

// engineDirs are the key spaces the engine reads; metadata after machines,
// which it applies to.
var engineDirs = []string{unitsDir, contentDir, scheduleDir, unplacedDir, machinesDir, metadataDir}

func (r *Registry) snapshot(ctx context.Context, dirs []string) (*Snapshot, error) {
	ops := make([]clientv3.Op, len(dirs))
	for i, d := range dirs {
		ops[i] = clientv3.OpGet(r.dir(d), clientv3.WithPrefix())
	}
	resp, err := r.c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("registry snapshot: %w", err)
	}
	s := newSnapshot(resp.Header.Revision)
	for i := range dirs {
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			if err := s.apply(r, kv); err != nil {
				return nil, err
			}
		}
	}
	s.sort()
	return s, nil
}

func newSnapshot(rev int64) *Snapshot {
	return &Snapshot{
		Revision:      rev,
		Units:         map[string]Unit{},
		Files:         map[unit.Hash][]byte{},
		FileRevisions: map[unit.Hash]int64{},
		Unplaced:      map[string]Unplaced{},
		Machines:      map[string]Machine{},
		Registered:    map[string]Machine{},
		Overrides:     map[string]map[string]string{},
	}
}

// UnitSnapshot reads what concerns one unit, at one revision: the unit,
// its file, its schedule entries (through the placed/ index), why it is
// not placed, the machines it is placed on and their reports of it. It
// is what the API serves one unit from, in two round trips whatever the
// size of the cluster. A unit that does not exist gives a snapshot with
// no units.
func (r *Registry) UnitSnapshot(ctx context.Context, name string) (*Snapshot, error) {
	placed := r.prefix + placedDir + name + "/"
	first, err := r.c.Txn(ctx).Then(
		clientv3.OpGet(r.unitKey(name)),
		clientv3.OpGet(r.unplacedKey(name)),
		clientv3.OpGet(placed, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", name, err)
	}
	s := newSnapshot(first.Header.Revision)
	for _, resp := range first.Responses[:2] {
		for _, kv := range resp.GetResponseRange().Kvs {
			if err := s.apply(r, kv); err != nil {
				return nil, err
			}
		}
	}
	u, ok := s.Units[name]
	if !ok {
		return s, nil
	}
	at := clientv3.WithRev(s.Revision)
	ops := []clientv3.Op{clientv3.OpGet(r.contentKey(u.Hash), at)}
	var machines []string
	for _, kv := range first.Responses[2].GetResponseRange().Kvs {
		machines = append(machines, strings.TrimPrefix(string(kv.Key), placed))
	}
	for _, m := range machines {
		ops = append(ops, clientv3.OpGet(r.machineKey(m), at), clientv3.OpGet(r.scheduleKey(m, name), at), clientv3.OpGet(r.stateKey(m, name), at))
	}
	for _, m := range machines { // operator metadata after the machines it applies to
		ops = append(ops, clientv3.OpGet(r.prefix+metadataDir+m+"/", clientv3.WithPrefix(), at))
	}
	second, err := r.c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", name, err)
	}
	for _, resp := range second.Responses {
		for _, kv := range resp.GetResponseRange().Kvs {
			if err := s.apply(r, kv); err != nil {
				return nil, err
			}
		}
	}
	s.sort()
	return s, nil
}

// apply adds one key to the snapshot (operator metadata after machines).
func (s *Snapshot) apply(r *Registry, kv *mvccpb.KeyValue) error {
	k, err := r.ParseKey(kv.Key)
	if err != nil {
		return err
	}
	switch k.Kind {
	case KindUnit:
		u, err := DecodeUnit(k, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		s.Units[k.Unit] = u
	case KindFile:
		s.Files[k.Hash] = kv.Value
		s.FileRevisions[k.Hash] = kv.ModRevision
	case KindPlacement:
		p, err := DecodePlacement(k, kv.Value)
		if err != nil {
			return err
		}
		s.Schedule = append(s.Schedule, p)
	case KindUnplaced:
		u, err := DecodeUnplaced(k, kv.Value)
		if err != nil {
			return err
		}
		s.Unplaced[k.Unit] = u
	case KindMachine:
		m, err := DecodeMachine(kv.Value)
		if err != nil {
			return err
		}
		s.Machines[k.Machine] = m
		s.Registered[k.Machine] = m
	case KindMetadata:
		o := s.Overrides[k.Machine]
		if o == nil {
			o = map[string]string{}
			s.Overrides[k.Machine] = o
		}
		o[k.Key] = string(kv.Value)
		if m, ok := s.Machines[k.Machine]; ok {
			m.Metadata = withOverride(m.Metadata, k.Key, string(kv.Value))
			s.Machines[k.Machine] = m
		}
	case KindState:
		st, err := DecodeState(k, kv.Value)
		if err != nil {
			return err
		}
		s.States = append(s.States, st)
	}
	return nil
}

func (s *Snapshot) sort() {
	sort.Slice(s.Schedule, func(i, j int) bool {
		a, b := s.Schedule[i], s.Schedule[j]
		return a.Unit < b.Unit || a.Unit == b.Unit && a.Machine < b.Machine
	})
	sort.Slice(s.States, func(i, j int) bool {
		a, b := s.States[i], s.States[j]
		return a.Unit < b.Unit || a.Unit == b.Unit && a.Machine < b.Machine
	})
}

// withOverride returns metadata with key set to value: operator metadata
// wins over what the machine registered. The map is copied.
func withOverride(metadata map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		out[k] = v
	}
	out[key] = value
	return out
}

// SetMetadata sets an operator metadata key of a machine; it outlives the
// machine's lease and wins over the metadata the machine registers with.
func (r *Registry) SetMetadata(ctx context.Context, machineID, key, value string) error {
	if err := checkMetadataKey(machineID, key); err != nil {
		return err
	}
	if _, err := r.c.Put(ctx, r.metadataKey(machineID, key), value); err != nil {
		return fmt.Errorf("machine %s metadata %s: %w", machineID, key, err)
	}
	return nil
}

// DeleteMetadata removes an operator metadata key of a machine.
func (r *Registry) DeleteMetadata(ctx context.Context, machineID, key string) error {
	if err := checkMetadataKey(machineID, key); err != nil {
		return err
	}
	resp, err := r.c.Delete(ctx, r.metadataKey(machineID, key))
	if err != nil {
		return fmt.Errorf("machine %s metadata %s: %w", machineID, key, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("machine %s metadata %s: %w", machineID, key, ErrNotFound)
	}
	return nil
}

func checkMetadataKey(machineID, key string) error {
	if machineID == "" || strings.Contains(machineID, "/") {
		return fmt.Errorf("registry: machine ID %q is not valid", machineID)
	}
	if key == "" || strings.Contains(key, "/") {
		return fmt.Errorf("registry: metadata key %q is not valid", key)
	}
	return nil
}
