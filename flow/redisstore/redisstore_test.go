package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/redisstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// namespaces gives every store of a test run keys of its own.
var namespaces atomic.Int64

// contract runs the store contract on stores made on client.
func contract(t *testing.T, client redis.UniversalClient) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		return newStore(t, client, now)
	})
}

func newStore(t *testing.T, client redis.UniversalClient, now func() time.Time) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(client, redisstore.Config{
		Prefix: "test:", Namespace: fmt.Sprintf("ns%d", namespaces.Add(1)), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeAtEnd(t *testing.T, c redis.UniversalClient) redis.UniversalClient {
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestContractStandalone(t *testing.T) {
	srv := redistest.Start(t)
	contract(t, closeAtEnd(t, redis.NewClient(&redis.Options{Addr: srv.Addr})))
}

// A one-node cluster refuses, as every cluster does, a script whose keys
// hash to different slots.
func TestContractCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	contract(t, closeAtEnd(t, redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})))
}

func TestContractSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "handoff")
	contract(t, closeAtEnd(t, redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "handoff", SentinelAddrs: []string{sentinel.Addr},
	})))
}

// Every key of a store carries the prefix and the namespace's hash tag, and
// values with a lifetime carry a native TTL, so Redis removes them itself.
func TestKeysAndNativeTTL(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s, err := redisstore.New(c, redisstore.Config{Prefix: "app:", Namespace: "ns", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	err = s.Apply(ctx, flow.Create("j/a", []byte("a"), time.Minute), flow.Create("f/b", []byte("b"), 0),
		flow.Schedule("f/b", clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := c.Keys(ctx, "*").Result()
	for _, k := range keys {
		if !strings.HasPrefix(k, "app:{ns}:") {
			t.Errorf("key %q lacks the prefix and hash tag", k)
		}
	}
	if len(keys) != 6 {
		t.Errorf("keys = %q; want 2 values, the counter and 3 timer sets (all by due, "+
			"all by key, f/ by due)", keys)
	}
	if ttl := c.PTTL(ctx, "app:{ns}:v:j/a").Val(); ttl <= 119*time.Second || ttl > 2*time.Minute {
		t.Errorf("PTTL of a value living a minute = %v; want its minute and a minute of grace", ttl)
	}
	if ttl := c.PTTL(ctx, "app:{ns}:v:f/b").Val(); ttl != -1 {
		t.Errorf("PTTL of a value living for ever = %v; want none (-1)", ttl)
	}
}

// A store answers ErrStoreUnavailable while Redis is down, and works again
// once it is back, on the same client, with what was written before.
func TestUnavailableThenBack(t *testing.T) {
	srv := redistest.Start(t)
	c := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1}))
	s := newStore(t, c, time.Now)
	ctx := context.Background()
	if err := s.Apply(ctx, flow.Create("f/a", []byte("a"), time.Hour)); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	calls := map[string]error{
		"Get":   func() error { _, err := s.Get(ctx, "f/a"); return err }(),
		"Apply": s.Apply(ctx, flow.Create("f/b", []byte("b"), 0)),
		"Claim": func() error { _, err := s.Claim(ctx, time.Now(), time.Minute, 10); return err }(),
		"Timers": func() error {
			_, _, err := s.Timers(ctx, "d/", 1)
			return err
		}(),
	}
	for name, err := range calls {
		if !errors.Is(err, flow.ErrStoreUnavailable) {
			t.Errorf("%s with Redis down: %v; want ErrStoreUnavailable", name, err)
		}
	}

	// Back, with the data of the append-only file and no script cached.
	srv.Start()
	ent, err := s.Get(ctx, "f/a")
	if err != nil || string(ent.Value) != "a" {
		t.Fatalf("Get after Redis came back = %q, %v", ent.Value, err)
	}
	if err := s.Apply(ctx, flow.Update("f/a", ent.Rev, []byte("a2"), 0)); err != nil {
		t.Fatalf("Apply after Redis came back: %v", err)
	}
	if _, err := s.Get(ctx, "f/b"); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("the Apply refused while Redis was down wrote: %v", err)
	}
}

func TestNamespaceRequired(t *testing.T) {
	if _, err := redisstore.New(redis.NewClient(&redis.Options{}), redisstore.Config{}); err == nil {
		t.Fatal("New without a namespace succeeded")
	}
}
