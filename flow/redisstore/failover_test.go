package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// When the master goes away, Sentinel promotes the replica and the store
// follows it on the same client: calls fail with ErrStoreUnavailable
// during the switch, then work, with every write the replica had received.
func TestSentinelFailover(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	sentinel := redistest.StartSentinel(t, master, "handoff")
	client := closeAtEnd(t, redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "handoff", SentinelAddrs: []string{sentinel.Addr},
		MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
	}))
	s := newStore(t, client, time.Now)
	ctx := context.Background()

	if err := s.Apply(ctx, flow.Create("f/a", []byte("a"), time.Hour),
		flow.Schedule("f/a", time.Now())); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: a write the replica has not received
	// when the master dies is lost. WAIT makes this one safe.
	if n, err := master.Client().Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("waiting for the replica: %d, %v", n, err)
	}
	waitSentinelSees(t, sentinel, replica.Addr)

	master.Stop()
	began := time.Now()
	var failures int
	for {
		err := s.Apply(ctx, flow.Create("f/b", []byte("b"), time.Hour))
		if err == nil {
			break
		}
		if !errors.Is(err, flow.ErrStoreUnavailable) {
			t.Fatalf("during the failover: %v; want ErrStoreUnavailable", err)
		}
		failures++
		if time.Since(began) > 30*time.Second {
			t.Fatalf("no failover after %v: %v", time.Since(began), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("failover took %v; %d calls failed meanwhile",
		time.Since(began).Round(100*time.Millisecond), failures)

	if ent, err := s.Get(ctx, "f/a"); err != nil || string(ent.Value) != "a" {
		t.Errorf("a replicated value after the failover: %q, %v", ent.Value, err)
	}
	if ts, n, err := s.Timers(ctx, "f/", 10); err != nil || n != 1 || ts[0].Key != "f/a" {
		t.Errorf("timers after the failover: %v, %d, %v", ts, n, err)
	}
}

// waitSentinelSees waits until the Sentinel knows the replica, so that it
// has someone to promote.
func waitSentinelSees(t *testing.T, sentinel *redistest.Server, replica string) {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr})
	defer sc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		replicas, _ := sc.Replicas(context.Background(), "handoff").Result()
		for _, r := range replicas {
			if r["ip"]+":"+r["port"] == replica && r["flags"] == "slave" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the sentinel never saw replica %s", replica)
}
