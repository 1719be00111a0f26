package memstore_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkMemoryStore(b *testing.B) {
	storetest.Bench(b, func(_ *testing.B, now func() time.Time) flow.Store {
		return memstore.New(now)
	})
}

// BenchmarkMemoryBytesPerFlow reports the heap a pending flow takes, from
// the heap in use before and after opening n flows. Run it with
// -benchtime 1x: each iteration fills a store anew.
func BenchmarkMemoryBytesPerFlow(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(storetest.Count(n), func(b *testing.B) {
			for range b.N {
				before := heapInUse()
				st := memstore.New(nil)
				storetest.Fill(b, st, 0, n, time.Now())
				after := heapInUse()
				runtime.KeepAlive(st)
				b.ReportMetric(float64(after-before)/float64(n), "B/flow")
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
