package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/redisstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// How long the stores of the tests wait for replicas: briefly where none
// will come, so that the tests are quick; longer where one must, so that
// a busy machine does not fail them; and in between where some will come
// but fewer than the store wants, long enough for those to acknowledge on
// a busy machine. All stay under go-redis's default ReadTimeout of 3s.
const (
	waitTimeout = 200 * time.Millisecond
	shortfall   = time.Second
	patient     = 2 * time.Second
)

// waitingStore returns a store on client made with cfg, in a namespace of
// its own unless cfg names one.
func waitingStore(t *testing.T, client redis.UniversalClient,
	cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	cfg.Prefix = "test:"
	if cfg.Namespace == "" {
		cfg.Namespace = fmt.Sprintf("ns%d", namespaces.Add(1))
	}
	s, err := redisstore.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waiting and hasty are the configurations of stores that wait for n
// replicas, patiently or not.
func waiting(n int) redisstore.Config {
	return redisstore.Config{WaitReplicas: n, WaitTimeout: patient}
}

func hasty(n int) redisstore.Config {
	return redisstore.Config{WaitReplicas: n, WaitTimeout: waitTimeout}
}

// wanting is the configuration of a store that waits for more replicas
// than there are.
func wanting(n int) redisstore.Config {
	return redisstore.Config{WaitReplicas: n, WaitTimeout: shortfall}
}

// waitOnline waits until master streams to n replicas.
func waitOnline(t *testing.T, master *redistest.Server, n int) {
	t.Helper()
	got, err := master.Client().Wait(context.Background(), n, patient).Result()
	if err != nil || got < int64(n) {
		t.Fatalf("waiting for %d replicas: %d, %v", n, got, err)
	}
}

// wantShortOfReplicas checks that err says a write went short of replicas,
// and that it came after about the wait's timeout.
func wantShortOfReplicas(t *testing.T, what string, err error, took, timeout time.Duration,
	msg string) {
	t.Helper()
	if !errors.Is(err, flow.ErrStoreUnavailable) || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %v; want ErrStoreUnavailable saying %q", what, err, msg)
	}
	if took < timeout || took > timeout+4*waitTimeout {
		t.Errorf("%s failed after %v; want about %v", what, took, timeout)
	}
}

// The store keeps its promises while it waits for a replica on every
// write: the script and WAIT share a round trip.
func TestContractWaitingStandalone(t *testing.T) {
	master := redistest.Start(t)
	redistest.StartReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: master.Addr}))
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		cfg := waiting(1)
		cfg.Now = now
		return waitingStore(t, client, cfg)
	})
}

// In a cluster, WAIT goes with the script to the master of the store's
// slot, whose replica acknowledges.
func TestContractWaitingCluster(t *testing.T) {
	master := redistest.StartCluster(t)
	redistest.StartClusterReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{master.Addr},
	}))
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		cfg := waiting(1)
		cfg.Now = now
		return waitingStore(t, client, cfg)
	})

	s := waitingStore(t, client, wanting(2))
	began := time.Now()
	err := s.Apply(context.Background(), flow.Create("f/a", nil, 0))
	wantShortOfReplicas(t, "Apply waiting for 2 of 1 replicas", err, time.Since(began),
		shortfall, "1 of 2 replicas")
}

// A write that fewer replicas acknowledge than the store wants fails with
// ErrStoreUnavailable after the timeout, and stands all the same.
func TestWaitReplicas(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: master.Addr}))
	ctx := context.Background()

	cfg := waiting(1)
	cfg.Namespace = "one"
	one := waitingStore(t, client, cfg)
	if err := one.Apply(ctx, flow.Create("f/a", []byte("a"), 0)); err != nil {
		t.Fatalf("Apply with its replica up: %v", err)
	}
	onReplica := waitingStore(t, replica.Client(), redisstore.Config{Namespace: "one"})
	if ent, err := onReplica.Get(ctx, "f/a"); err != nil || string(ent.Value) != "a" {
		t.Errorf("the replica has %q, %v; want the write", ent.Value, err)
	}

	two := waitingStore(t, client, wanting(2))
	began := time.Now()
	err := two.Apply(ctx, flow.Create("f/b", []byte("b"), 0))
	wantShortOfReplicas(t, "Apply waiting for 2 replicas", err, time.Since(began),
		shortfall, "1 of 2 replicas")
	if ent, err := two.Get(ctx, "f/b"); err != nil || string(ent.Value) != "b" {
		t.Errorf("the write short of replicas: %q, %v; want it to stand", ent.Value, err)
	}
	err = two.Apply(ctx, flow.Create("f/b", []byte("b"), 0))
	if !errors.Is(err, flow.ErrConflict) {
		t.Errorf("the same step again: %v; want ErrConflict, not a second write", err)
	}

	replica.Stop()
	began = time.Now()
	err = waitingStore(t, client, hasty(1)).Apply(ctx, flow.Create("f/c", nil, 0))
	wantShortOfReplicas(t, "Apply with its replica stopped", err, time.Since(began),
		waitTimeout, "0 of 1 replicas")
}

// Claim waits like Apply when it moves timers, and not when it claims
// nothing, since then it wrote nothing.
func TestWaitReplicasClaim(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: master.Addr}))
	cfg, hastyCfg := waiting(1), hasty(1)
	cfg.Namespace, hastyCfg.Namespace = "claims", "claims"
	s, h := waitingStore(t, client, cfg), waitingStore(t, client, hastyCfg)
	ctx := context.Background()

	now := time.Now()
	if err := s.Apply(ctx, flow.Schedule("d/1", now), flow.Schedule("d/2", now)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Claim(ctx, time.Now(), time.Minute, 1)
	if err != nil || len(keys) != 1 {
		t.Fatalf("Claim with its replica up: %v, %v", keys, err)
	}

	replica.Stop()
	began := time.Now()
	keys, err = h.Claim(ctx, time.Now(), time.Minute, 1)
	wantShortOfReplicas(t, "Claim with its replica stopped", err, time.Since(began),
		waitTimeout, "0 of 1 replicas")
	if keys != nil {
		t.Errorf("a claim short of replicas returned %v", keys)
	}
	if keys, err := h.Claim(ctx, time.Now(), time.Minute, 1); err != nil || len(keys) != 0 {
		t.Errorf("a claim of nothing with its replica stopped: %v, %v; want none", keys, err)
	}
}

// A replica that is connected but behind holds up writes just as one that
// is gone, and once it catches up, writes go through again.
func TestWaitReplicasBehind(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: master.Addr}))
	s := waitingStore(t, client, hasty(1))
	ctx := context.Background()

	replica.Pause()
	for i := range 3 {
		began := time.Now()
		err := s.Apply(ctx, flow.Create(fmt.Sprintf("f/%d", i), nil, 0))
		wantShortOfReplicas(t, "Apply with its replica behind", err, time.Since(began),
			waitTimeout, "0 of 1 replicas")
	}
	replica.Resume()
	err := waitingStore(t, client, waiting(1)).Apply(ctx, flow.Create("f/late", nil, 0))
	if err != nil {
		t.Errorf("Apply once the replica caught up: %v", err)
	}
}

// The scripts are sent again after Redis forgets them, with WAIT behind.
func TestWaitReplicasScriptFlushed(t *testing.T) {
	master := redistest.Start(t)
	redistest.StartReplica(t, master)
	waitOnline(t, master, 1)
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: master.Addr}))
	s := waitingStore(t, client, waiting(1))
	ctx := context.Background()

	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	err := s.Apply(ctx, flow.Create("f/a", nil, 0), flow.Schedule("f/a", time.Now()))
	if err != nil {
		t.Fatalf("Apply after a script flush: %v", err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.Claim(ctx, time.Now(), time.Minute, 10); err != nil || len(keys) != 1 {
		t.Errorf("Claim after a script flush: %v, %v", keys, err)
	}
}

func TestWaitConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{})
	defer c.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "localhost:1"}})
	defer ring.Close()
	bad := map[string]struct {
		client redis.UniversalClient
		cfg    redisstore.Config
	}{
		"negative replicas": {c, redisstore.Config{Namespace: "n", WaitReplicas: -1}},
		"negative timeout":  {c, redisstore.Config{Namespace: "n", WaitTimeout: -1}},
		"a ring":            {ring, redisstore.Config{Namespace: "n", WaitReplicas: 1}},
	}
	for name, b := range bad {
		if _, err := redisstore.New(b.client, b.cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := redisstore.New(ring, redisstore.Config{Namespace: "n"}); err != nil {
		t.Errorf("a ring, not waiting: %v", err)
	}
}
