package caddymodule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
)

// storageModule is a storage store module as Provision leaves it, on st.
func storageModule(t *testing.T, st certmagic.Storage, shared bool) *StorageStore {
	t.Helper()
	s := &StorageStore{Shared: shared, storage: st, logger: zap.NewNop()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { _ = s.Cleanup() })
	return s
}

const testNamespace = "ns"

// TestStorageStoreLayouts checks which layout each storage gets: a log on
// the local file system, a file per key with shared or in any other
// storage.
func TestStorageStoreLayouts(t *testing.T) {
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	st, err := storageModule(t, fs, false).Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*logstore.Store); !ok {
		t.Fatalf("store on the local file system is %T; want the log", st)
	}
	if !exists(filepath.Join(dir, "bot_handoff", testNamespace, logDir)) {
		t.Fatal("no log in the handler's directory")
	}

	for name, m := range map[string]*StorageStore{
		"shared":        storageModule(t, &certmagic.FileStorage{Path: t.TempDir()}, true),
		"other storage": storageModule(t, otherStorage{&certmagic.FileStorage{Path: t.TempDir()}}, false),
	} {
		st, err := m.Store(testNamespace)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.(*storageStore); !ok {
			t.Errorf("%s: store is %T; want a file per key", name, st)
		}
	}
}

// TestStorageLogOutlivesAReload provisions a second configuration on the
// same handler before the first is cleaned up, as a reload does: both use
// one open log, which closes with the last of them.
func TestStorageLogOutlivesAReload(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	old, next := storageModule(t, fs, false), storageModule(t, fs, false)
	a, err := old.Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, flow.Create("f/1", []byte("v"), 0)); err != nil {
		t.Fatal(err)
	}
	b, err := next.Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the reloaded configuration opened a log of its own")
	}

	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "f/1"); err != nil {
		t.Fatalf("after the old configuration stopped: %v", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, flow.Create("f/2", []byte("v"), 0)); !errors.Is(err, logstore.ErrClosed) {
		t.Fatalf("Apply after the last configuration stopped: %v; want ErrClosed", err)
	}
}

// fillFlows writes a value that lives, one that has expired and one
// without a lifetime, and timers, through st.
func fillFlows(t *testing.T, st flow.Store, now time.Time) {
	t.Helper()
	err := st.Apply(context.Background(),
		flow.Create("f/live", []byte("live flow"), time.Hour),
		flow.Create("f/gone", []byte("expired flow"), time.Millisecond),
		flow.Create("j/used", []byte("1"), 0),
		flow.Schedule("f/live", now.Add(time.Minute)),
		flow.Schedule("d/f/live", now.Add(-time.Second)),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// wantFlows checks that st holds what fillFlows wrote, less the expired,
// with the timers of d/f/live and f/live due at first and second.
func wantFlows(t *testing.T, st flow.Store, first, second time.Time) {
	t.Helper()
	ctx := context.Background()
	for key, want := range map[string]string{"f/live": "live flow", "j/used": "1"} {
		if e, err := st.Get(ctx, key); err != nil || string(e.Value) != want {
			t.Errorf("%s = %q, %v; want %q", key, e.Value, err, want)
		}
	}
	if _, err := st.Get(ctx, "f/gone"); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("expired f/gone: %v; want ErrNotFound", err)
	}
	timers, n, err := st.Timers(ctx, "", 10)
	if err != nil || n != 2 {
		t.Fatalf("timers = %v (%d), %v; want 2", timers, n, err)
	}
	if !timers[0].Due.Equal(first) || !timers[1].Due.Equal(second) {
		t.Errorf("timers = %v; want their due times kept", timers)
	}
}

// TestStorageStoreMovesFilesIntoTheLog opens the log over flows kept a
// file per key, as earlier versions and shared keep them.
func TestStorageStoreMovesFilesIntoTheLog(t *testing.T) {
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	now := time.Now()
	files := newStorageStore(fs, "bot_handoff/"+testNamespace, nil)
	fillFlows(t, files, now)
	_ = files.w.close()
	time.Sleep(2 * time.Millisecond) // f/gone expires

	st, err := storageModule(t, fs, false).Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	wantFlows(t, st, now.Add(-time.Second), now.Add(time.Minute))
	for _, sub := range []string{"kv", "ti", "tq"} {
		if exists(filepath.Join(dir, "bot_handoff", testNamespace, sub)) {
			t.Errorf("%s/ is still there after the move", sub)
		}
	}
}

// TestStorageStoreMovesTheEarlierDatabaseIntoTheLog opens the log over a
// database the earlier layout wrote (flow/boltstore's fixture).
func TestStorageStoreMovesTheEarlierDatabaseIntoTheLog(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	dir := filepath.Join(fs.Path, "bot_handoff", testNamespace)
	fixture, err := os.ReadFile(filepath.Join("..", "flow", "boltstore", "testdata", boltFile))
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, boltFile), fixture, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}

	st, err := storageModule(t, fs, false).Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	wantFlows(t, st, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if exists(filepath.Join(dir, boltFile)) {
		t.Error("the database is still there after the move")
	}
}

// TestStorageStoreMovesTheLogIntoFiles opens the store with shared over a
// handler's log.
func TestStorageStoreMovesTheLogIntoFiles(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	now := time.Now()
	first := storageModule(t, fs, false)
	l, err := first.Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	fillFlows(t, l, now)
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)

	st, err := storageModule(t, fs, true).Store(testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	wantFlows(t, st, now.Add(-time.Second), now.Add(time.Minute))
	if exists(filepath.Join(fs.Path, "bot_handoff", testNamespace, logDir)) {
		t.Error("the log is still there after the move")
	}
}

// TestStorageStoreLayoutChangesTakeARestart checks that a reload cannot
// switch layouts under the configuration still serving from the other.
func TestStorageStoreLayoutChangesTakeARestart(t *testing.T) {
	for _, shared := range []bool{false, true} {
		fs := &certmagic.FileStorage{Path: t.TempDir()}
		running := storageModule(t, fs, shared)
		if _, err := running.Store(testNamespace); err != nil {
			t.Fatal(err)
		}
		_, err := storageModule(t, fs, !shared).Store(testNamespace)
		if err == nil || !strings.Contains(err.Error(), "restart") {
			t.Errorf("reload from shared %v to %v: %v; want an error asking for a restart",
				shared, !shared, err)
		}
	}
}

// TestStorageLogHeldByAnotherProcess checks the error when the log is
// held elsewhere: here by a handle of its own, which flock tells apart
// from the pool's as it would another process.
func TestStorageLogHeldByAnotherProcess(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	dir := filepath.Join(fs.Path, "bot_handoff", testNamespace)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	other, err := logstore.Open(filepath.Join(dir, logDir), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	defer func(d time.Duration) { logLockTimeout = d }(logLockTimeout)
	logLockTimeout = 100 * time.Millisecond

	_, err = storageModule(t, fs, false).Store(testNamespace)
	if err == nil || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("store over a held log: %v; want an error naming shared", err)
	}
}
