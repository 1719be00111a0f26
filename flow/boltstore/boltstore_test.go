package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/boltstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"), now)
	})
}

func open(t *testing.T, path string, now func() time.Time) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{Now: now, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestReopenKeepsEverything writes values, a lifetime and timers, closes
// the file and opens it again.
func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	path := filepath.Join(t.TempDir(), "store.db")
	st := open(t, path, clock.Now)
	err := st.Apply(ctx,
		flow.Create("f/a", []byte("flow a"), time.Hour),
		flow.Schedule("f/a", clock.Now().Add(time.Minute)),
		flow.Create("j/used", []byte("1"), 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Get(ctx, "f/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open(t, path, clock.Now)
	after, err := st.Get(ctx, "f/a")
	if err != nil || string(after.Value) != "flow a" || after.Rev != before.Rev {
		t.Fatalf("after reopening, f/a = %q rev %d, %v; want %q rev %d",
			after.Value, after.Rev, err, "flow a", before.Rev)
	}
	if _, err := st.Get(ctx, "j/used"); err != nil {
		t.Fatalf("after reopening, j/used: %v", err)
	}
	timers, n, err := st.Timers(ctx, "f/", 10)
	if err != nil || n != 1 || !timers[0].Due.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("after reopening, timers = %v (%d), %v", timers, n, err)
	}

	// A new revision after reopening is still new.
	if err := st.Apply(ctx, flow.Update("f/a", after.Rev, []byte("flow a'"), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, _ := st.Get(ctx, "f/a"); e.Rev <= before.Rev {
		t.Fatalf("revision after reopening = %d; want above %d", e.Rev, before.Rev)
	}

	clock.Advance(time.Hour)
	if _, err := st.Get(ctx, "f/a"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("f/a past its lifetime: %v; want ErrNotFound", err)
	}
}

// TestOneProcessHoldsTheFile opens a database twice: the second open waits
// for the lock, then fails with an error that says why.
func TestOneProcessHoldsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	first := open(t, path, nil)
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("a second Open of a held database succeeded")
	}
	t.Logf("second open: %v", err)

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path, nil)
}

// TestConflictsStayTheirOwn runs many Applies at once, so that they share
// transactions; the half that conflict fail alone, and the rest land.
func TestConflictsStayTheirOwn(t *testing.T) {
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "store.db"), nil)
	const n = 200
	for i := 0; i < n; i += 2 {
		if err := st.Apply(ctx, flow.Create(fmt.Sprintf("k/%03d", i), []byte("taken"), 0)); err != nil {
			t.Fatal(err)
		}
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("k/%03d", i)
			errs[i] = st.Apply(ctx, flow.Create(key, []byte("new"), 0), flow.Schedule(key, time.Now()))
		})
	}
	wg.Wait()

	for i, err := range errs {
		key := fmt.Sprintf("k/%03d", i)
		got, gerr := st.Get(ctx, key)
		switch {
		case i%2 == 0 && !errors.Is(err, flow.ErrConflict):
			t.Errorf("create of taken %s: %v; want ErrConflict", key, err)
		case i%2 == 0 && string(got.Value) != "taken":
			t.Errorf("%s = %q, %v; want the first value kept", key, got.Value, gerr)
		case i%2 == 1 && (err != nil || string(got.Value) != "new"):
			t.Errorf("create of free %s: %v; value %q, %v", key, err, got.Value, gerr)
		}
	}
	if _, total, _ := st.Timers(ctx, "k/", 0); total != n/2 {
		t.Errorf("%d timers; want %d, one per landed Apply", total, n/2)
	}
}

// TestSweepRemovesExpired checks that Sweep removes what expired, by the
// expiry index, and keeps the rest, including a value rewritten with a
// longer lifetime.
func TestSweepRemovesExpired(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	st := open(t, filepath.Join(t.TempDir(), "store.db"), clock.Now)
	for i := range 2500 {
		key := fmt.Sprintf("x/%d", i)
		if err := st.Apply(ctx, flow.Create(key, []byte("v"), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	keep := []flow.Op{
		flow.Create("y/forever", []byte("v"), 0),
		flow.Create("y/later", []byte("v"), time.Hour),
	}
	if err := st.Apply(ctx, keep...); err != nil {
		t.Fatal(err)
	}
	e, _ := st.Get(ctx, "x/7")
	if err := st.Apply(ctx, flow.Update("x/7", e.Rev, []byte("v2"), 2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	clock.Advance(2 * time.Minute)
	n, err := st.Sweep(ctx)
	if err != nil || n != 2499 {
		t.Fatalf("Sweep = %d, %v; want 2499", n, err)
	}
	if n, _ := st.Sweep(ctx); n != 0 {
		t.Fatalf("second Sweep removed %d", n)
	}
	for _, key := range []string{"y/forever", "y/later", "x/7"} {
		if _, err := st.Get(ctx, key); err != nil {
			t.Errorf("%s after the sweep: %v", key, err)
		}
	}

	clock.Advance(3 * time.Hour)
	if n, _ := st.Sweep(ctx); n != 2 {
		t.Fatalf("Sweep after three hours removed %d; want 2 (y/later, x/7)", n)
	}
}

// TestClosedStoreRefuses checks that calls after Close fail instead of
// waiting for a committer that has stopped.
func TestClosedStoreRefuses(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "store.db"), nil)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	err := st.Apply(context.Background(), flow.Create("k", []byte("v"), 0))
	if !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("Apply after Close: %v; want ErrClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestTimersPrefixIsTheKeys checks that a prefix matches keys, not the
// tagged keys the database keeps: a key's own tag does not bring it under
// a prefix longer than the key.
func TestTimersPrefixIsTheKeys(t *testing.T) {
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "store.db"), nil)
	due := time.Now().Truncate(time.Millisecond)
	err := st.Apply(ctx, flow.Create("d/x", []byte("v"), 0), flow.Schedule("d/x", due),
		flow.Schedule("d/x2", due))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{"d/": 2, "d/x": 2, "d/x2": 1, "d/x\x01": 0, "d/x\x00": 0}
	for prefix, want := range counts {
		if _, n, err := st.Timers(ctx, prefix, 10); err != nil || n != want {
			t.Errorf("Timers(%q) counted %d, %v; want %d", prefix, n, err, want)
		}
	}
}
