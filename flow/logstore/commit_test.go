package logstore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
)

// TestWritersShareSyncs has 16 writers write at once on one processor, as a
// server on one CPU does, and checks that their writes share batches: the
// writer lets the ready writers add theirs before it takes a batch, rather
// than syncing the first write alone.
func TestWritersShareSyncs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	st := open(t, t.TempDir(), logstore.Options{})
	first := logstore.Batches(st)

	const writers, each = 16, 50
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for i := range each {
				key := fmt.Sprintf("w%d/%d", w, i)
				if err := st.Apply(context.Background(), flow.Create(key, []byte("v"), 0)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	// Taking the first write alone makes a batch of each write; one yield
	// before a batch, about 13 writes a batch here; yielding as long as the
	// batch grows, all 16 writers' writes.
	batches := logstore.Batches(st) - first
	if per := float64(writers*each) / float64(batches); per < 14 {
		t.Errorf("%d writes in %d batches, %.1f a batch; want 14 or more",
			writers*each, batches, per)
	}
}
