package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/redisstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// BenchmarkRedisStore runs against a redis-server on loopback with the
// append-only file on and synced every second, Redis's default for it.
func BenchmarkRedisStore(b *testing.B) {
	srv := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
	b.Cleanup(func() { _ = client.Close() })
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		return newBenchStore(b, client, now)
	})
}

// BenchmarkRedisBytesPerFlow reports the memory Redis uses per pending
// flow, from used_memory before and after opening n flows. Run it with
// -benchtime 1x.
func BenchmarkRedisBytesPerFlow(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(storetest.Count(n), func(b *testing.B) {
			for range b.N {
				srv := redistest.Start(b)
				client := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
				st := newBenchStore(b, client, time.Now)
				before := usedMemory(b, client)
				storetest.Fill(b, st, 0, n, time.Now())
				b.ReportMetric(float64(usedMemory(b, client)-before)/float64(n), "B/flow")
				_ = client.Close()
				srv.Stop()
			}
		})
	}
}

// BenchmarkRedisTimers reads the oldest of 50,000 pending deliveries, as
// health checks do: by their kind, and by a prefix that is not one, which
// reads them all.
func BenchmarkRedisTimers(b *testing.B) {
	srv := redistest.Start(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	st := storeIn(b, client, "timers", time.Now)
	fillDeliveries(b, st, 50_000)
	// The first call by kind fills the sets of kinds.
	if _, _, err := st.Timers(context.Background(), "d/", 1); err != nil {
		b.Fatal(err)
	}

	for _, prefix := range []string{"d/", "d"} {
		b.Run("prefix="+prefix, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := st.Timers(context.Background(), prefix, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newBenchStore(b *testing.B, client redis.UniversalClient, now func() time.Time) flow.Store {
	b.Helper()
	s, err := redisstore.New(client, redisstore.Config{
		Namespace: "bench" + strconv.FormatInt(namespaces.Add(1), 10), Now: now,
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
