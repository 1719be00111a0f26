package flow_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

// keyRecorder is a store that remembers the keys written.
type keyRecorder struct {
	flow.Store
	mu   sync.Mutex
	keys []string
}

func (s *keyRecorder) Apply(ctx context.Context, ops ...flow.Op) error {
	s.mu.Lock()
	for _, op := range ops {
		s.keys = append(s.keys, op.Key)
	}
	s.mu.Unlock()
	return s.Store.Apply(ctx, ops...)
}

func newLocker(t *testing.T, st flow.Store) *flow.StoreLocker {
	t.Helper()
	kr, err := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	if err != nil {
		t.Fatal(err)
	}
	return flow.NewStoreLocker(st, kr, nil, nil)
}

// lockWithin takes the lock if it is free within d.
func lockWithin(l flow.Locker, name string, d time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.Lock(ctx, name, time.Minute)
}

func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

func TestStoreLockerHoldsOthersOff(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := &keyRecorder{Store: memstore.New(clock.Now)}
	a, b := newLocker(t, st), newLocker(t, st)

	const name, other = "https://state/v3/botstate/user-1", "https://state/v3/botstate/user-2"
	release, err := a.Lock(context.Background(), name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockWithin(b, name, 50*time.Millisecond); !isDeadline(err) {
		t.Fatalf("second lock: %v; want the deadline while the first is held", err)
	}
	if r, err := lockWithin(b, other, time.Second); err != nil {
		t.Fatalf("a lock of another name: %v", err)
	} else {
		r()
	}

	// Released, the lock is free again, to a waiter too.
	got := make(chan error, 1)
	go func() {
		r, err := lockWithin(b, name, 5*time.Second)
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("lock after release: %v", err)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	for _, k := range st.keys {
		if strings.Contains(k, "user-") || strings.Contains(k, "botstate") {
			t.Errorf("store key %q shows the lock's name", k)
		}
	}
}

func TestStoreLockerLapses(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := memstore.New(clock.Now)
	a, b := newLocker(t, st), newLocker(t, st)

	// The holder dies: its lock lapses after the TTL.
	stale, err := a.Lock(context.Background(), "record", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute + time.Second)
	release, err := lockWithin(b, "record", time.Second)
	if err != nil {
		t.Fatalf("lock after the TTL: %v", err)
	}

	// The first holder's late release leaves the new holder's lock alone.
	stale()
	if _, err := lockWithin(a, "record", 50*time.Millisecond); !isDeadline(err) {
		t.Fatalf("lock after a stale release: %v; want it still held", err)
	}
	release()
	if r, err := lockWithin(a, "record", time.Second); err != nil {
		t.Fatalf("lock after the release: %v", err)
	} else {
		r()
	}
}

// lockUser is a signal that keeps the Locker the engine gives it.
type lockUser struct {
	recorder
	locker flow.Locker
}

func (s *lockUser) UseLocker(l flow.Locker) { s.locker = l }

func TestEngineGivesSignalsASharedLocker(t *testing.T) {
	var one, two lockUser
	e := newEnv(t, func(c *flow.Config) { c.Signals = []flow.Signal{&one} })
	e.instance(func(c *flow.Config) { c.Signals = []flow.Signal{&two} })
	if one.locker == nil || two.locker == nil {
		t.Fatal("the engine gave a LockUser no Locker")
	}

	// Two instances on one store: the lock of one holds the other off.
	release, err := lockWithin(one.locker, "record", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := lockWithin(two.locker, "record", 50*time.Millisecond); !isDeadline(err) {
		t.Errorf("the other instance's lock: %v; want the deadline", err)
	}
}
