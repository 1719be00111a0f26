// Package memstore is a flow.Store kept in the memory of one process: for
// tests, and for a single instance that may lose its flows on restart.
package memstore

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Store is an in-memory flow.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu     sync.Mutex
	rev    uint64
	items  map[string]item
	timers map[string]time.Time
	due    timeHeap // timers, possibly stale: checked against timers
	expiry timeHeap // TTLs, possibly stale: checked against items
}

type item struct {
	value []byte
	rev   uint64
	exp   time.Time
}

// New returns an empty store reading time from now (time.Now if nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, items: map[string]item{}, timers: map[string]time.Time{}}
}

// Get implements flow.Store.
func (s *Store) Get(_ context.Context, key string) (flow.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	it, ok := s.live(key)
	if !ok {
		return flow.Entry{}, flow.ErrNotFound
	}
	return flow.Entry{Value: it.value, Rev: it.rev}, nil
}

// live returns the item at key unless it is absent or expired.
func (s *Store) live(key string) (item, bool) {
	it, ok := s.items[key]
	if !ok || (!it.exp.IsZero() && !s.now().Before(it.exp)) {
		return item{}, false
	}
	return it, true
}

// Apply implements flow.Store.
func (s *Store) Apply(_ context.Context, ops ...flow.Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	for _, op := range ops {
		if err := s.check(op); err != nil {
			return err
		}
	}

	now := s.now()
	s.sweep(now)
	for _, op := range ops {
		s.apply(op, now)
	}
	return nil
}

func (s *Store) check(op flow.Op) error {
	it, ok := s.live(op.Key)
	return flow.CheckOp(op, ok, it.rev)
}

func (s *Store) apply(op flow.Op, now time.Time) {
	switch op.Kind {
	case flow.OpCreate, flow.OpUpdate:
		s.rev++
		it := item{value: op.Value, rev: s.rev}
		if op.TTL > 0 {
			it.exp = now.Add(op.TTL)
			heap.Push(&s.expiry, timed{at: it.exp, key: op.Key})
		}
		s.items[op.Key] = it
	case flow.OpDelete:
		delete(s.items, op.Key)
	case flow.OpSchedule:
		s.timers[op.Key] = op.Due
		heap.Push(&s.due, timed{at: op.Due, key: op.Key})
	case flow.OpUnschedule:
		delete(s.timers, op.Key)
	}
}

// sweep drops entries whose TTL has passed, so that memory follows the
// number of live flows.
func (s *Store) sweep(now time.Time) {
	for s.expiry.Len() > 0 && !now.Before(s.expiry[0].at) {
		t := heap.Pop(&s.expiry).(timed)
		if it, ok := s.items[t.key]; ok && it.exp.Equal(t.at) {
			delete(s.items, t.key)
		}
	}
}

// Claim implements flow.Store.
func (s *Store) Claim(_ context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var keys []string
	for len(keys) < limit && s.due.Len() > 0 && !now.Before(s.due[0].at) {
		t := heap.Pop(&s.due).(timed)
		if due, ok := s.timers[t.key]; !ok || !due.Equal(t.at) {
			continue // rescheduled or unscheduled since
		}
		keys = append(keys, t.key)
	}

	// Moved only now, so that a short lease cannot bring a key back into
	// this same claim.
	next := now.Add(lease)
	for _, k := range keys {
		s.timers[k] = next
		heap.Push(&s.due, timed{at: next, key: k})
	}
	return keys, nil
}

// Timers implements flow.Store.
func (s *Store) Timers(_ context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var out []flow.Timer
	for k, due := range s.timers {
		if strings.HasPrefix(k, prefix) {
			out = append(out, flow.Timer{Key: k, Due: due})
		}
	}
	total := len(out)
	flow.SortTimers(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

// Len returns the number of live entries, for tests and benchmarks.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	return len(s.items)
}

var _ flow.Store = (*Store)(nil)
