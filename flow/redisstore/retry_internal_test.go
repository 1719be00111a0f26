package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// A client that loses the answer to an Apply sends the same script again.
// The second run must find the first one's work and succeed without doing
// it twice: an update must not become two updates, nor a conflict.
func TestRetriedApplyWritesOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	s, err := New(c, Config{Namespace: "retry"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Apply(ctx, flow.Create("f/a", []byte("0"), 0)); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Get(ctx, "f/a")

	ops := []flow.Op{
		flow.Update("f/a", before.Rev, []byte("1"), time.Hour),
		flow.Create("d/x", []byte("event"), 0),
		flow.Schedule("d/x", time.Now()),
	}
	keys, args, err := s.applyArgs("token-1", ops)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		if got, err := applyScript.Run(ctx, c, keys, args...).Int(); err != nil || got != 0 {
			t.Fatalf("run %d = %d, %v; want success", run+1, got, err)
		}
	}

	after, _ := s.Get(ctx, "f/a")
	if string(after.Value) != "1" {
		t.Fatalf("value = %q; want 1", after.Value)
	}
	if n := c.Get(ctx, s.counter).Val(); n != "3" {
		t.Errorf("revision counter = %s; want 3 (one create, then one update and one create)", n)
	}

	// Another call with the same ops but its own token is a new write, and
	// conflicts as it should.
	keys, args, _ = s.applyArgs("token-2", ops)
	if got, _ := applyScript.Run(ctx, c, keys, args...).Int(); got != 1 {
		t.Errorf("a new call at the old revision = %d; want a conflict on op 1", got)
	}
}

// A retried Apply may reach Redis on another connection than the first
// attempt, whose answer was lost. The retry finds the first attempt's
// write and does not redo it; WAIT behind it must still wait for that
// write, which the master had made when the retry ran. The retry here
// comes on a new connection, for which WAIT alone would count every
// replica connected.
func TestRetriedApplyWaitsForTheFirstWrite(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	s, err := New(master.Client(), Config{Namespace: "retry", WaitReplicas: 1,
		WaitTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	keys, args, err := s.applyArgs("token-1", []flow.Op{flow.Create("f/a", []byte("a"), 0)})
	if err != nil {
		t.Fatal(err)
	}
	replica.Pause()
	first := master.Client()
	if got, err := applyScript.Run(ctx, first, keys, args...).Int(); err != nil || got != 0 {
		t.Fatalf("first attempt = %d, %v", got, err)
	}

	res, wait := s.run(ctx, applyScript, keys, args...)
	if got, err := res.Int(); err != nil || got != 0 {
		t.Fatalf("retry = %d, %v; want success", got, err)
	}
	if acked, err := wait.Result(); err != nil || acked != 0 {
		t.Errorf("WAIT behind the retry = %d, %v; want 0 of the paused replica: the retry "+
			"did not wait for the first attempt's write", acked, err)
	}
	if n := first.Get(ctx, s.counter).Val(); n != "1" {
		t.Errorf("revision counter = %s; want 1: the retry wrote again", n)
	}
}
