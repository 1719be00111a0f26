package storetest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// BenchStore returns an empty store for a benchmark, reading time from now.
type BenchStore func(b *testing.B, now func() time.Time) flow.Store

// Bench measures the store's operations: one at a time (the latency a
// request sees) and from many goroutines at once (the throughput of an
// instance). Each reports ops/s besides ns/op. A store that needs data is
// made and filled once per operation and mode, not again as the benchmark
// ramps up.
func Bench(b *testing.B, newStore BenchStore) {
	ops := []struct {
		name  string
		setup func(b *testing.B, st flow.Store)
		run   func(b *testing.B, st flow.Store, parallel bool)
	}{
		{"Get", fillSome, benchGet},
		{"ApplyCreate", nil, benchCreate},
		{"ApplyUpdate", fillSome, benchUpdate},
		{"Claim", scheduleSome, benchClaim},
	}
	now := NewClock(time.Now().Truncate(time.Millisecond)).Now
	for _, op := range ops {
		for _, mode := range []string{"serial", "parallel"} {
			var st flow.Store
			setup := sync.OnceFunc(func() {
				if op.setup != nil {
					st = newStore(b, now)
					op.setup(b, st)
				}
			})
			b.Run(op.name+"/"+mode, func(b *testing.B) {
				setup()
				if op.setup == nil { // a store of its own each run
					st = newStore(b, now)
				}
				op.run(b, st, mode == "parallel")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// benchKeys is how many flows or timers the benchmarks work on.
const benchKeys = 256

// benchParallelism is how many goroutines per CPU the parallel runs use:
// a store across the network is bound by round trips, not by CPU.
const benchParallelism = 8

// loop runs body b.N times, on one goroutine or many; each goroutine gets
// its own number.
func loop(b *testing.B, parallel bool, body func(worker int, i int)) {
	b.ResetTimer()
	if !parallel {
		for i := range b.N {
			body(0, i)
		}
		return
	}
	var workers atomic.Int64
	b.SetParallelism(benchParallelism)
	b.RunParallel(func(pb *testing.PB) {
		w := int(workers.Add(1))
		for i := 0; pb.Next(); i++ {
			body(w, i)
		}
	})
}

func fillSome(b *testing.B, st flow.Store) { Fill(b, st, 0, benchKeys, time.Now()) }

// benchGet reads flow records.
func benchGet(b *testing.B, st flow.Store, parallel bool) {
	loop(b, parallel, func(w, i int) {
		if _, err := st.Get(b.Context(), FlowKey((w*7919+i)%benchKeys)); err != nil {
			b.Fatal(err)
		}
	})
}

// benchCreate opens flows as the engine does: the link marked used, the
// record created and its timer set, in one Apply.
func benchCreate(b *testing.B, st flow.Store, parallel bool) {
	now := time.Now()
	records := make([][]byte, 64) // made before, so that JSON is not measured
	for i := range records {
		records[i] = flowRecord(i, now)
	}
	var next atomic.Int64
	loop(b, parallel, func(int, int) {
		i := int(next.Add(1))
		if err := st.Apply(b.Context(), pendingOps(i, now, records[i%len(records)])...); err != nil {
			b.Fatal(err)
		}
	})
}

// benchUpdate changes a record by compare-and-set, as a verify call does:
// read, then write at the revision read.
func benchUpdate(b *testing.B, st flow.Store, parallel bool) {
	value := flowRecord(0, time.Now())
	loop(b, parallel, func(w, i int) {
		key := FlowKey((w*7919 + i) % benchKeys)
		ent, err := st.Get(b.Context(), key)
		if err != nil {
			b.Fatal(err)
		}
		err = st.Apply(b.Context(), flow.Update(key, ent.Rev, value, time.Hour))
		if err != nil && !isConflict(err) {
			b.Fatal(err)
		}
	})
}

// claimEpoch is when the Claim benchmark's timers are due.
var claimEpoch = Epoch

func scheduleSome(b *testing.B, st flow.Store) {
	var ops []flow.Op
	for i := range benchKeys {
		ops = append(ops, flow.Schedule(fmt.Sprintf("d/%06d", i), claimEpoch))
	}
	if err := st.Apply(b.Context(), ops...); err != nil {
		b.Fatal(err)
	}
}

// benchClaim claims batches of 32 due keys, as the outbox worker does. The
// time passed moves on so that a key comes due again once every key was
// claimed: each call finds a full batch.
func benchClaim(b *testing.B, st flow.Store, parallel bool) {
	const batch, lease = 32, time.Minute
	step := lease * batch / benchKeys
	var calls atomic.Int64
	loop(b, parallel, func(int, int) {
		now := claimEpoch.Add(time.Duration(calls.Add(1)) * step)
		if _, err := st.Claim(b.Context(), now, lease, batch); err != nil {
			b.Fatal(err)
		}
	})
}

// FlowKey is the record key of pending flow i, shaped like the engine's.
func FlowKey(i int) string { return "f/" + id(i, 18) }

func linkKey(i int) string { return "j/" + id(i, 18) }

// id encodes i in n bytes as the engine's IDs are encoded.
func id(i, n int) string {
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b[n-8:], uint64(i))
	return base64.RawURLEncoding.EncodeToString(b)
}

// PendingFlow returns the ops that open pending flow i at now, as the
// engine's start does: the link marked used for its lifetime, the record
// kept for its deadline and the retention, and its timer.
func PendingFlow(i int, now time.Time) []flow.Op {
	return pendingOps(i, now, flowRecord(i, now))
}

func pendingOps(i int, now time.Time, record []byte) []flow.Op {
	return []flow.Op{
		flow.Create(linkKey(i), []byte(id(i, 18)+"."+id(i, 16)), 15*time.Minute),
		flow.Create(FlowKey(i), record, flow.DefaultFlowTTL+flow.DefaultRetention),
		flow.Schedule(FlowKey(i), now.Add(flow.DefaultFlowTTL)),
	}
}

// flowRecord is the stored record of a pending site flow of a Teams user,
// with the identifiers of the length Teams uses.
func flowRecord(i int, now time.Time) []byte {
	rec := flow.Record{
		ID: id(i, 16), Conv: id(i, 18), Flow: "checkout", Kind: flow.KindSite,
		Status: flow.StatusPending,
		Ref: flow.Ref{
			ChannelID:  "msteams",
			ServiceURL: "https://smba.trafficmanager.net/emea/",
			Conversation: flow.Conversation{
				ID:       "a:1" + id(i, 60),
				TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
			},
			User: flow.Account{ID: "29:1" + id(i, 48), Name: "Alice Example"},
			Bot:  &flow.Account{ID: "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c", Name: "Helper"},
		},
		Data:       json.RawMessage(`{"orderId":"o-` + fmt.Sprint(i) + `"}`),
		LinkIssued: now, Browser: make([]byte, 32),
		Created: now, Updated: now, Deadline: now.Add(flow.DefaultFlowTTL),
	}
	b, err := json.Marshal(&rec)
	if err != nil {
		panic(err)
	}
	return b
}

// Fill opens pending flows from..to-1 in st, from several goroutines.
func Fill(b *testing.B, st flow.Store, from, to int, now time.Time) {
	b.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(int64(from))
	errs := make(chan error, benchParallelism)
	for range benchParallelism {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < to; i = int(next.Add(1)) - 1 {
				if err := st.Apply(b.Context(), PendingFlow(i, now)...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func isConflict(err error) bool { return errors.Is(err, flow.ErrConflict) }

// Count names a number of flows for a benchmark: 10k, 100k.
func Count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
