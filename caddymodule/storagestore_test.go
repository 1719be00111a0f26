package caddymodule

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

// TestStorageStoreContract runs the store contract on the local file
// system, through the fast path where the platform has one.
func TestStorageStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		return newStorageStore(&certmagic.FileStorage{Path: t.TempDir()}, "bot_handoff/test", now)
	})
}

// otherStorage hides the file storage's type, as any other Caddy storage
// module would, so the store writes and locks through the interface.
type otherStorage struct{ certmagic.Storage }

// TestStorageStoreContractGeneric runs the store contract through
// certmagic.Storage alone: its own synced writes and lock files.
func TestStorageStoreContractGeneric(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		st := otherStorage{&certmagic.FileStorage{Path: t.TempDir()}}
		s := newStorageStore(st, "bot_handoff/test", now)
		if _, ok := s.w.(caddyWriter); !ok {
			t.Fatalf("writer %T; want the storage's own", s.w)
		}
		return s
	})
}

// TestStorageStoresShareOneDirectory runs two stores on one directory, as
// two Caddy instances sharing a storage would: a key created by one is
// refused to the other, and compare-and-set increments from both add up.
func TestStorageStoresShareOneDirectory(t *testing.T) {
	dir := t.TempDir()
	a := newStorageStore(&certmagic.FileStorage{Path: dir}, "bot_handoff/test", nil)
	b := newStorageStore(&certmagic.FileStorage{Path: dir}, "bot_handoff/test", nil)
	ctx := context.Background()

	if err := a.Apply(ctx, flow.Create("k", []byte("0"), 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, flow.Create("k", []byte("x"), 0)); !errors.Is(err, flow.ErrConflict) {
		t.Fatalf("second create from the other store: %v; want a conflict", err)
	}

	var wg sync.WaitGroup
	for _, s := range []*storageStore{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				for {
					ent, err := s.Get(ctx, "k")
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(ent.Value))
					next := []byte(strconv.Itoa(n + 1))
					if err := s.Apply(ctx, flow.Update("k", ent.Rev, next, 0)); err == nil {
						break
					} else if !errors.Is(err, flow.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if ent, _ := a.Get(ctx, "k"); string(ent.Value) != "100" {
		t.Errorf("after 100 increments from two stores: %s", ent.Value)
	}

	// The files are certmagic's: the file storage reads what the store wrote.
	raw, err := os.ReadFile(filepath.Join(dir, "bot_handoff", "test", "kv", "k"))
	if err != nil || len(raw) != headerLen+3 {
		t.Errorf("stored file: %q, %v", raw, err)
	}
}

// TestFileWriterListsAsTheStorage checks the local path's listing against
// certmagic's: the same keys, files and directories, one level deep.
func TestFileWriterListsAsTheStorage(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	s := newStorageStore(fs, "bot_handoff/test", nil)
	if _, ok := s.w.(caddyWriter); ok {
		t.Skip("no local file path on this platform")
	}
	ctx := context.Background()
	for _, k := range []string{"tq/000001/a.1", "tq/000001/b.2", "tq/000002/c.3", "tq/x"} {
		if err := s.w.put(ctx, "bot_handoff/test/"+k, nil); err != nil {
			t.Fatal(err)
		}
	}

	for _, dir := range []string{"bot_handoff/test/tq", "bot_handoff/test/tq/000001"} {
		got, err := s.w.list(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.List(ctx, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("list %s = %q; the storage lists %q", dir, got, want)
		}
	}
	if _, err := s.w.list(ctx, "bot_handoff/test/none"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("listing a missing directory: %v; want not-exist", err)
	}
}

// listCounter is a storage that counts the listings of one directory.
type listCounter struct {
	certmagic.Storage
	dir string
	n   atomic.Int32
}

func (l *listCounter) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if prefix == l.dir {
		l.n.Add(1)
	}
	return l.Storage.List(ctx, prefix, recursive)
}

// TestStorageClaimListsTheQueueRarely checks that the worker's claims list
// the queue's minutes once per queueRelist, which in storages that keep
// keys flat scans every entry, and still find what another instance queues
// in the minutes behind.
func TestStorageClaimListsTheQueueRarely(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	queue := &listCounter{Storage: fs, dir: "bot_handoff/test/tq"}
	a := newStorageStore(queue, "bot_handoff/test", clock.Now)
	b := newStorageStore(&listCounter{Storage: fs}, "bot_handoff/test", clock.Now)
	ctx := context.Background()

	claim := func(want ...string) {
		t.Helper()
		got, err := a.Claim(ctx, clock.Now(), time.Minute, 10)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("claim at %v: %q, %v; want %q", clock.Now().Sub(storetest.Epoch), got, err, want)
		}
		for _, k := range got { // done, as the worker's handling of a key ends
			if err := a.Apply(ctx, flow.Unschedule(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	claim()
	for i := range int(queueRelist/time.Minute) - 1 {
		clock.Advance(time.Minute)
		key := "d/" + strconv.Itoa(i)
		if err := b.Apply(ctx, flow.Schedule(key, clock.Now().Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
		claim(key)
	}
	if n := queue.n.Load(); n != 1 {
		t.Errorf("the queue was listed %d times in %v; want once", n, queueRelist-time.Minute)
	}

	clock.Advance(time.Minute)
	claim()
	if n := queue.n.Load(); n != 2 {
		t.Errorf("the queue was listed %d times after %v; want twice", n, queueRelist)
	}
}
