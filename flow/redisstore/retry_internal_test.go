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
