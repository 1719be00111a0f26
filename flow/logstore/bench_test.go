package logstore_test

import (
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		return open(b, b.TempDir(), logstore.Options{Now: now})
	})
}

// BenchmarkCopy times the copy of the state a compaction takes, at 100,000
// pending flows (two values and two timers each); it lets the store's
// calls in after every few thousand entries.
func BenchmarkCopy(b *testing.B) {
	const flows = 100_000
	st := memstore.NewState()
	now := time.Now()
	for i := range flows {
		for _, op := range storetest.PendingFlow(i, now) {
			st.Apply(op, now, 0)
		}
	}
	b.ResetTimer()

	for b.Loop() {
		if c := st.Copy(now, func() {}); len(c.Items) != 2*flows {
			b.Fatalf("copied %d items; want %d", len(c.Items), 2*flows)
		}
	}
}
