package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/boltstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		path := filepath.Join(b.TempDir(), "store.db")
		st, err := boltstore.Open(path, boltstore.Options{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// BenchmarkSweepIdle times a sweep that finds nothing expired among the
// entries of 50,000 pending flows: the read of every entry's header, which
// the sweeper makes every sweep_interval.
func BenchmarkSweepIdle(b *testing.B) {
	const n = 50_000
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "store.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	storetest.Fill(b, st, 0, n, time.Now())
	b.ResetTimer()

	for b.Loop() {
		if removed, err := st.Sweep(context.Background()); err != nil || removed != 0 {
			b.Fatalf("Sweep = %d, %v", removed, err)
		}
	}
}
