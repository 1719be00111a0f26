package logstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

// contents is what a store holds, as Dump lists it.
type contents struct {
	values map[string]string
	timers map[string]time.Time
}

func dump(t *testing.T, st *logstore.Store) contents {
	t.Helper()
	c := contents{values: map[string]string{}, timers: map[string]time.Time{}}
	err := st.Dump(context.Background(),
		func(key string, value []byte, _ time.Time) error {
			c.values[key] = string(value)
			return nil
		},
		func(key string, due time.Time) error {
			c.timers[key] = due
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantContents(t *testing.T, got, want contents) {
	t.Helper()
	if !maps.Equal(got.values, want.values) {
		t.Fatalf("values: got %d, want %d; differing keys %v", len(got.values),
			len(want.values), differing(got.values, want.values))
	}
	if !maps.EqualFunc(got.timers, want.timers, time.Time.Equal) {
		t.Fatalf("timers: got %d, want %d", len(got.timers), len(want.timers))
	}
}

func differing(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), 5)]
}

// churn writes what flows do, n rounds of it: creates with lifetimes and
// timers, updates, deletions. The same writes go to a memory store, whose
// contents the log store must match.
func churn(t *testing.T, st *logstore.Store, model *memstore.Store, n int) {
	t.Helper()
	ctx := context.Background()
	apply := func(ops ...flow.Op) {
		t.Helper()
		mustApply(t, st, ops...)
		if err := model.Apply(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		key := fmt.Sprintf("f/%05d", i)
		value := bytes.Repeat([]byte{byte('a' + i%26)}, 200)
		due := storetest.Epoch.Add(time.Duration(i))
		apply(flow.Create(key, value, time.Hour), flow.Schedule(key, due))
		if i%3 == 0 {
			e, err := st.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := model.Get(ctx, key)
			if e.Rev != m.Rev {
				t.Fatalf("%s rev %d; the model's %d", key, e.Rev, m.Rev)
			}
			apply(flow.Update(key, e.Rev, []byte("updated"), time.Hour), flow.Unschedule(key))
		}
		if i%5 == 0 && i > 0 {
			apply(flow.Delete(fmt.Sprintf("f/%05d", i-1), 0))
		}
	}
}

func modelContents(t *testing.T, model *memstore.Store, keys int) contents {
	t.Helper()
	ctx := context.Background()
	c := contents{values: map[string]string{}, timers: map[string]time.Time{}}
	for i := range keys {
		key := fmt.Sprintf("f/%05d", i)
		if e, err := model.Get(ctx, key); err == nil {
			c.values[key] = string(e.Value)
		}
	}
	timers, _, err := model.Timers(ctx, "", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range timers {
		c.timers[tm.Key] = tm.Due
	}
	return c
}

// waitCompacted waits until the store's directory holds a snapshot and
// only the segments after it.
func waitCompacted(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		segs, snaps := files(t, dir)
		if len(snaps) == 1 && len(segs) >= 1 && segs[0][:16] == snaps[0][:16] {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	segs, snaps := files(t, dir)
	t.Fatalf("no compaction: segments %v, snapshots %v", segs, snaps)
}

// TestCompaction churns past a small CompactAfter many times over: the
// log is compacted as it goes, stays small, and every reopening finds what
// a memory store given the same writes holds.
func TestCompaction(t *testing.T) {
	const n = 3000
	clock := storetest.NewClock(storetest.Epoch)
	dir := t.TempDir()
	opts := logstore.Options{Now: clock.Now, CompactAfter: 64 << 10}
	st := open(t, dir, opts)
	model := memstore.New(clock.Now)
	churn(t, st, model, n)
	waitCompacted(t, dir)
	want := modelContents(t, model, n)
	wantContents(t, dump(t, st), want)
	mustClose(t, st)

	// What the files hold, the zeros segments are preallocated with aside.
	var size int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			size += int64(framesEnd(b))
		}
	}
	// About 240 bytes of record a value; a log of every write would be
	// several times that.
	if limit := int64(len(want.values))*300 + 3*opts.CompactAfter; size > limit {
		t.Errorf("the store's files take %d bytes; want at most %d", size, limit)
	}

	st = open(t, dir, opts)
	wantContents(t, dump(t, st), want)
}

// TestCrashesWhileCompacting opens the directories a crash leaves at each
// step of a compaction: a snapshot still being written, and a snapshot in
// place beside the files it replaces.
func TestCrashesWhileCompacting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir, logstore.Options{})
	model := memstore.New(nil)
	churn(t, st, model, 300)
	want := modelContents(t, model, 300)

	var snap bytes.Buffer
	if _, err := st.Backup(&snap, nil); err != nil {
		t.Fatal(err)
	}
	mustClose(t, st)

	// A snapshot cut short, not yet renamed: ignored and removed.
	tmp := filepath.Join(dir, "0000000000000002.snap.tmp")
	if err := os.WriteFile(tmp, snap.Bytes()[:snap.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, logstore.Options{})
	wantContents(t, dump(t, st), want)
	mustClose(t, st)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary snapshot is still there: %v", err)
	}

	// A snapshot of the state at the end of segment 1, in place as number
	// 1: segment 1 replays on it again, which changes nothing, and a
	// segment 0 before it is removed.
	placed := filepath.Join(dir, "0000000000000001.snap")
	if err := os.WriteFile(placed, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "0000000000000000.log")
	if err := os.WriteFile(stale, []byte("anything"), 0o600); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, logstore.Options{})
	wantContents(t, dump(t, st), want)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the segment the snapshot replaces is still there: %v", err)
	}
	mustApply(t, st, flow.Create("f/after", []byte("x"), 0))
	mustClose(t, st)
	st = open(t, dir, logstore.Options{})
	wantValue(t, st, "f/after", "x")
	if _, err := st.Get(ctx, "f/00001"); err != nil && !errors.Is(err, flow.ErrNotFound) {
		t.Fatal(err)
	}
}

// TestBackupOpens restores a backup taken while writes go on: a directory
// holding only the copy opens as the store at the time of the copy, and
// the length announced is the length written.
func TestBackupOpens(t *testing.T) {
	st := open(t, t.TempDir(), logstore.Options{})
	model := memstore.New(nil)
	churn(t, st, model, 500)
	want := modelContents(t, model, 500)

	var copy bytes.Buffer
	var announced int64
	written, err := st.Backup(&copy, func(n int64) { announced = n })
	if err != nil || written != announced || written != int64(copy.Len()) {
		t.Fatalf("Backup wrote %d (buffer %d), announced %d, %v",
			written, copy.Len(), announced, err)
	}
	mustApply(t, st, flow.Create("f/later", []byte("x"), 0))

	restored := t.TempDir()
	if err := os.WriteFile(filepath.Join(restored, "0.snap"), copy.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got := open(t, restored, logstore.Options{})
	wantContents(t, dump(t, got), want)
	if _, err := got.Get(context.Background(), "f/later"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("a write after the backup is in it: %v", err)
	}
}

// TestFailedWriteStopsTheStore breaks the log under the writer: the write
// that fails gets the error, and so does every call after it, since the
// memory is then ahead of the disk. Opening the store again recovers what
// was durable.
func TestFailedWriteStopsTheStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := logstore.Open(dir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, st, flow.Create("f/a", []byte("a"), 0))

	logstore.BreakLog(st)
	if err := st.Apply(ctx, flow.Create("f/b", []byte("b"), 0)); err == nil {
		t.Fatal("a write to a broken log succeeded")
	} else {
		t.Logf("write: %v", err)
	}
	if _, err := st.Get(ctx, "f/a"); err == nil {
		t.Fatal("a read after a failed write succeeded")
	}
	_ = st.Close()

	st = open(t, dir, logstore.Options{})
	wantValue(t, st, "f/a", "a")
	if _, err := st.Get(ctx, "f/b"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("f/b of the failed write: %v; want ErrNotFound", err)
	}
}

// TestClosedStoreRefuses checks every call after Close.
func TestClosedStoreRefuses(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir(), logstore.Options{})
	mustClose(t, st)
	if err := st.Apply(ctx, flow.Create("f/a", nil, 0)); !errors.Is(err, logstore.ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, err := st.Get(ctx, "f/a"); !errors.Is(err, logstore.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := st.Claim(ctx, time.Now(), time.Minute, 1); !errors.Is(err, logstore.ErrClosed) {
		t.Fatalf("Claim after Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestCompactionUnderConcurrentWrites compacts again and again while
// writers change their own keys, so that the copies let writes in midway:
// after reopening, every key holds what its writer wrote last.
func TestCompactionUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := logstore.Options{CompactAfter: 16 << 10}
	st := open(t, dir, opts)
	const writers, keys, rounds = 8, 1000, 4

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				for k := range keys {
					key := fmt.Sprintf("w%d/%03d", w, k)
					value := []byte(fmt.Sprintf("round %d", r))
					var err error
					switch {
					case r == 0:
						err = st.Apply(ctx, flow.Create(key, value, time.Hour))
					case r == rounds-1 && k%4 == 0:
						err = st.Apply(ctx, flow.Delete(key, 0), flow.Unschedule(key))
					default:
						var e flow.Entry
						if e, err = st.Get(ctx, key); err == nil {
							err = st.Apply(ctx, flow.Update(key, e.Rev, value, time.Hour),
								flow.Schedule(key, storetest.Epoch.Add(time.Duration(r))))
						}
					}
					if err != nil {
						errs <- fmt.Errorf("%s round %d: %w", key, r, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitCompacted(t, dir)
	mustClose(t, st)

	st = open(t, dir, opts)
	got := dump(t, st)
	want := contents{values: map[string]string{}, timers: map[string]time.Time{}}
	for w := range writers {
		for k := range keys {
			if k%4 == 0 {
				continue
			}
			key := fmt.Sprintf("w%d/%03d", w, k)
			want.values[key] = fmt.Sprintf("round %d", rounds-1)
			want.timers[key] = storetest.Epoch.Add(time.Duration(rounds - 1))
		}
	}
	wantContents(t, got, want)
}
