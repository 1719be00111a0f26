// Package storetest is the contract of flow.Store, as tests. Run checks that
// a store keeps every promise the engine relies on: conditional writes,
// all-or-nothing batches, lifetimes, timers and claims, under concurrency.
// Every store in the project runs it; a new store should too:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
//			return mystore.New(now)
//		})
//	}
//
// The suite drives time through the clock it hands the store, never by
// sleeping, and uses whole milliseconds: a store may keep lifetimes and due
// times to the millisecond.
package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// NewStore returns an empty store that reads the time from now. Every call
// must return a store that shares no keys with the stores made before.
type NewStore func(t *testing.T, now func() time.Time) flow.Store

// Epoch is where the suite's clocks start.
var Epoch = time.Date(2031, time.March, 14, 15, 9, 26, 0, time.UTC)

// A Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Run runs the contract against stores made by newStore, each case in
// parallel on a store of its own.
func Run(t *testing.T, newStore NewStore) {
	cases := []struct {
		name string
		run  func(*env)
	}{
		{"GetMissing", testGetMissing},
		{"CreateIfAbsent", testCreateIfAbsent},
		{"UpdateByRevision", testUpdateByRevision},
		{"ConditionalDelete", testConditionalDelete},
		{"AllOrNothing", testAllOrNothing},
		{"UnknownOp", testUnknownOp},
		{"ValuesByteForByte", testValuesByteForByte},
		{"LifetimeByClock", testLifetimeByClock},
		{"WriteResetsLifetime", testWriteResetsLifetime},
		{"ScheduleRescheduleUnschedule", testSchedule},
		{"TimersApartFromValues", testTimersApartFromValues},
		{"ClaimDueOnly", testClaimDueOnly},
		{"ClaimLease", testClaimLease},
		{"ClaimNoLease", testClaimNoLease},
		{"ClaimLimit", testClaimLimit},
		{"ClaimOverADay", testClaimOverADay},
		{"TimersPrefixAndCount", testTimersPrefix},
		{"RevisionsNeverReused", testRevisionsNeverReused},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"ConcurrentClaims", testConcurrentClaims},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(Epoch)
			c.run(&env{T: t, clock: clock, store: newStore(t, clock.Now), ctx: context.Background()})
		})
	}
}

// env is one case's store and clock, with assertions on them.
type env struct {
	*testing.T
	clock *Clock
	store flow.Store
	ctx   context.Context
}

func (e *env) now() time.Time { return e.clock.Now() }

func (e *env) apply(ops ...flow.Op) error { return e.store.Apply(e.ctx, ops...) }

func (e *env) mustApply(ops ...flow.Op) {
	e.Helper()
	if err := e.apply(ops...); err != nil {
		e.Fatalf("Apply: %v", err)
	}
}

func (e *env) wantConflict(err error, what string) {
	e.Helper()
	if !errors.Is(err, flow.ErrConflict) {
		e.Fatalf("%s: got %v; want ErrConflict", what, err)
	}
}

// get returns the entry at key, failing the test on any error.
func (e *env) get(key string) flow.Entry {
	e.Helper()
	ent, err := e.store.Get(e.ctx, key)
	if err != nil {
		e.Fatalf("Get(%q): %v", key, err)
	}
	if ent.Rev == 0 {
		e.Fatalf("Get(%q): revision 0", key)
	}
	return ent
}

func (e *env) wantValue(key, want string) flow.Entry {
	e.Helper()
	ent := e.get(key)
	if string(ent.Value) != want {
		e.Fatalf("Get(%q) = %q; want %q", key, ent.Value, want)
	}
	return ent
}

func (e *env) wantAbsent(key string) {
	e.Helper()
	if ent, err := e.store.Get(e.ctx, key); !errors.Is(err, flow.ErrNotFound) {
		e.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, ent.Value, err)
	}
}

// timers lists the timers under prefix, failing the test on error.
func (e *env) timers(prefix string, limit int) ([]flow.Timer, int) {
	e.Helper()
	ts, n, err := e.store.Timers(e.ctx, prefix, limit)
	if err != nil {
		e.Fatalf("Timers(%q, %d): %v", prefix, limit, err)
	}
	return ts, n
}

// wantTimers checks every timer under prefix, in order.
func (e *env) wantTimers(prefix string, want ...flow.Timer) {
	e.Helper()
	got, n := e.timers(prefix, len(want)+10)
	if n != len(want) || len(got) != len(want) {
		e.Fatalf("Timers(%q) = %v (%d in all); want %v", prefix, got, n, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || !got[i].Due.Equal(want[i].Due) {
			e.Fatalf("Timers(%q) = %v; want %v", prefix, got, want)
		}
	}
}

// claim claims due keys at the clock's time and returns them sorted.
func (e *env) claim(lease time.Duration, limit int) []string {
	e.Helper()
	keys, err := e.store.Claim(e.ctx, e.now(), lease, limit)
	if err != nil {
		e.Fatalf("Claim: %v", err)
	}
	slices.Sort(keys)
	return keys
}

func (e *env) wantClaim(lease time.Duration, limit int, want ...string) {
	e.Helper()
	if got := e.claim(lease, limit); !slices.Equal(got, want) {
		e.Fatalf("Claim at %v = %q; want %q", e.now().Sub(Epoch), got, want)
	}
}
