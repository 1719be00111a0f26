// Package memstore is a flow.Store kept in the memory of one process: for
// tests, and for a single instance that may lose its flows on restart.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Store is an in-memory flow.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu    sync.Mutex
	state *State
}

// New returns an empty store reading time from now (time.Now if nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, state: NewState()}
}

// Get implements flow.Store.
func (s *Store) Get(_ context.Context, key string) (flow.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	it, ok := s.state.Live(key, s.now())
	if !ok {
		return flow.Entry{}, flow.ErrNotFound
	}
	return flow.Entry{Value: it.Value, Rev: it.Rev}, nil
}

// Apply implements flow.Store.
func (s *Store) Apply(_ context.Context, ops ...flow.Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.now()
	if err := s.state.Check(ops, now); err != nil {
		return err
	}
	s.state.Sweep(now)
	for _, op := range ops {
		s.state.Apply(op, now, 0)
	}
	return nil
}

// Claim implements flow.Store.
func (s *Store) Claim(_ context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Claim(now, lease, limit), nil
}

// Timers implements flow.Store.
func (s *Store) Timers(_ context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, total := s.state.Timers(prefix, limit)
	return out, total, nil
}

// Len returns the number of live entries, for tests and benchmarks.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Sweep(s.now())
	return s.state.Len()
}

var _ flow.Store = (*Store)(nil)
