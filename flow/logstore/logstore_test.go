package logstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		return open(t, t.TempDir(), logstore.Options{Now: now})
	})
}

// open opens the store in dir and closes it when the test ends.
func open(t testing.TB, dir string, opts logstore.Options) *logstore.Store {
	t.Helper()
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 100 * time.Millisecond
	}
	st, err := logstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func mustApply(t testing.TB, st flow.Store, ops ...flow.Op) {
	t.Helper()
	if err := st.Apply(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
}

func mustClose(t testing.TB, st *logstore.Store) {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantValue fails unless key holds want.
func wantValue(t testing.TB, st flow.Store, key, want string) flow.Entry {
	t.Helper()
	e, err := st.Get(context.Background(), key)
	if err != nil || string(e.Value) != want {
		t.Fatalf("%s = %q, %v; want %q", key, e.Value, err, want)
	}
	return e
}

// TestReopenKeepsEverything writes values, lifetimes, deletions and
// timers, closes the store and opens it again.
func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	dir := t.TempDir()
	st := open(t, dir, logstore.Options{Now: clock.Now})
	mustApply(t, st,
		flow.Create("f/a", []byte("flow a"), time.Hour),
		flow.Schedule("f/a", clock.Now().Add(time.Minute)),
		flow.Create("j/used", []byte("1"), 0),
		flow.Create("f/gone", []byte("x"), 0),
	)
	mustApply(t, st, flow.Delete("f/gone", 0), flow.Create("f/short", []byte("s"), time.Minute))
	before := wantValue(t, st, "f/a", "flow a")
	last := wantValue(t, st, "f/short", "s")
	mustClose(t, st)

	st = open(t, dir, logstore.Options{Now: clock.Now})
	after := wantValue(t, st, "f/a", "flow a")
	if after.Rev != before.Rev {
		t.Fatalf("f/a rev after reopening = %d; want %d", after.Rev, before.Rev)
	}
	wantValue(t, st, "j/used", "1")
	if _, err := st.Get(ctx, "f/gone"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("deleted f/gone after reopening: %v", err)
	}
	timers, n, err := st.Timers(ctx, "f/", 10)
	if err != nil || n != 1 || !timers[0].Due.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("after reopening, timers = %v (%d), %v", timers, n, err)
	}

	// A value whose lifetime ended while the store was closed stays gone,
	// and the revisions go on rising past the highest ever given.
	mustClose(t, st)
	clock.Advance(2 * time.Minute)
	st = open(t, dir, logstore.Options{Now: clock.Now})
	if _, err := st.Get(ctx, "f/short"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("f/short past its lifetime after reopening: %v", err)
	}
	mustApply(t, st, flow.Update("f/a", after.Rev, []byte("flow a'"), time.Hour))
	if e := wantValue(t, st, "f/a", "flow a'"); e.Rev <= last.Rev {
		t.Fatalf("revision after reopening = %d; want above %d", e.Rev, last.Rev)
	}
}

// TestOneProcessHoldsTheStore opens a store twice: the second open waits
// for the lock, then fails with ErrLocked.
func TestOneProcessHoldsTheStore(t *testing.T) {
	dir := t.TempDir()
	first := open(t, dir, logstore.Options{})
	_, err := logstore.Open(dir, logstore.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, logstore.ErrLocked) {
		t.Fatalf("a second Open of a held store: %v; want ErrLocked", err)
	}
	mustClose(t, first)
	open(t, dir, logstore.Options{})
}

// TestConflictsStayTheirOwn runs many Applies at once, so that they share
// batches; the half that conflict fail alone, and the rest land and stay
// after reopening.
func TestConflictsStayTheirOwn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir, logstore.Options{})
	const n = 200
	for i := 0; i < n; i += 2 {
		mustApply(t, st, flow.Create(fmt.Sprintf("k/%03d", i), []byte("taken"), 0))
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
	mustClose(t, st)

	st = open(t, dir, logstore.Options{})
	for i, err := range errs {
		key := fmt.Sprintf("k/%03d", i)
		if i%2 == 0 {
			if !errors.Is(err, flow.ErrConflict) {
				t.Fatalf("creating taken %s: %v; want ErrConflict", key, err)
			}
			wantValue(t, st, key, "taken")
			continue
		}
		if err != nil {
			t.Fatalf("creating %s: %v", key, err)
		}
		wantValue(t, st, key, "new")
	}
	if _, total, _ := st.Timers(ctx, "k/", 0); total != n/2 {
		t.Fatalf("timers after reopening = %d; want %d", total, n/2)
	}
}

// segments returns the names of the store's log segments and snapshots.
func files(t *testing.T, dir string) (segments, snapshots []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".log":
			segments = append(segments, e.Name())
		case ".snap":
			snapshots = append(snapshots, e.Name())
		}
	}
	return segments, snapshots
}

// lastSegment returns the path of the store's newest log segment.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := files(t, dir)
	if len(segs) == 0 {
		t.Fatal("no log segment")
	}
	return filepath.Join(dir, segs[len(segs)-1])
}

// framesEnd returns where the frames of a segment end: the zeros it is
// preallocated with follow them.
func framesEnd(b []byte) int {
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return end
}

// twoFrames writes f/a and f/b in two frames to a new store, closes it, and
// returns its directory, its segment's path and what that holds.
func twoFrames(t *testing.T) (dir, path string, segment []byte) {
	t.Helper()
	dir = t.TempDir()
	st := open(t, dir, logstore.Options{})
	mustApply(t, st, flow.Create("f/a", []byte("a"), 0))
	mustApply(t, st, flow.Create("f/b", []byte("b"), 0))
	mustClose(t, st)

	path = lastSegment(t, dir)
	segment, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir, path, segment
}

// TestTornEndIsCutOff appends half a frame to the log, as a crash in the
// middle of a write leaves it: the store opens with what was whole, and
// writes after it.
func TestTornEndIsCutOff(t *testing.T) {
	dir, path, whole := twoFrames(t)
	// The second frame, with its last bytes never written: zeros, as the
	// segment was preallocated.
	end := framesEnd(whole)
	clear(whole[end-3 : end])
	if err := os.WriteFile(path, whole, 0o600); err != nil {
		t.Fatal(err)
	}

	st := open(t, dir, logstore.Options{})
	wantValue(t, st, "f/a", "a")
	if _, err := st.Get(context.Background(), "f/b"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("f/b of the torn frame: %v; want ErrNotFound", err)
	}
	mustApply(t, st, flow.Create("f/c", []byte("c"), 0))
	mustClose(t, st)

	st = open(t, dir, logstore.Options{})
	wantValue(t, st, "f/a", "a")
	wantValue(t, st, "f/c", "c")
}

// TestDamageBeforeTheEndFails flips a byte in a segment that another
// follows: that is not a crash's torn end, and Open refuses to guess.
func TestDamageBeforeTheEndFails(t *testing.T) {
	dir, path, b := twoFrames(t)

	// A second segment after the first: replaying the same frames twice
	// ends in the same state, so this store opens as it is.
	if err := os.WriteFile(filepath.Join(dir, "0000000000000009.log"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	st := open(t, dir, logstore.Options{})
	wantValue(t, st, "f/b", "b")
	mustClose(t, st)

	b[framesEnd(b)-2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := logstore.Open(dir, logstore.Options{}); err == nil {
		t.Fatal("a damaged segment before the last opened")
	} else {
		t.Logf("open: %v", err)
	}
}
