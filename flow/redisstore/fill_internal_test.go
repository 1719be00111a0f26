package redisstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// The sets of kinds fill in batches while instances keep writing: timers
// scheduled, moved and removed on either side of the cursor between two
// batches end up in the sets of their kinds as in the sets of all timers.
func TestFillWhileWriting(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	s, err := New(c, Config{Namespace: "fill"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Truncate(time.Millisecond)
	apply := func(ops ...flow.Op) {
		t.Helper()
		if err := s.Apply(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}

	var ops []flow.Op
	for i := range 2500 {
		kind := []string{"d/", "x/", "f/"}[i%3]
		key := fmt.Sprintf("%s%04d", kind, i)
		ops = append(ops, flow.Schedule(key, t0.Add(time.Duration(i)*time.Second)))
	}
	apply(ops...)
	kinds, _ := c.Keys(ctx, s.byDue+":*").Result()
	if err := c.Del(ctx, append(kinds, s.layout)...).Err(); err != nil {
		t.Fatal(err)
	}

	// One batch, then writes before and after the cursor, which sits
	// among the f/ keys.
	if done := fillOnce(t, s); done {
		t.Fatal("filled in one batch; want several")
	}
	later := t0.Add(24 * time.Hour)
	apply(flow.Unschedule("d/0000"), flow.Unschedule("x/2498"),
		flow.Schedule("d/0003", later), flow.Schedule("x/2495", later),
		flow.Schedule("a/new", later), flow.Schedule("z/new", later))
	if keys, err := s.Claim(ctx, t0.Add(time.Minute), time.Hour, 100); err != nil || len(keys) < 50 {
		t.Fatalf("Claim = %d keys, %v", len(keys), err)
	}
	for !fillOnce(t, s) {
	}

	for _, kind := range []string{"a/", "d/", "f/", "x/", "z/"} {
		byKind, n, err := s.Timers(ctx, kind, 5000)
		if err != nil {
			t.Fatal(err)
		}
		byPrefix, m := lexTimers(t, s, kind)
		if n != m || !slices.Equal(byKind, byPrefix) {
			t.Errorf("timers of %s: %d in the kind's set, %d among all timers, or in "+
				"another order", kind, n, m)
		}
	}
}

// fillOnce runs one batch of fillScript and reports whether the sets of
// kinds are filled.
func fillOnce(t *testing.T, s *Store) bool {
	t.Helper()
	keys, args := s.kindArgs([]string{s.layout, s.byKey, s.byDue},
		[]any{layoutVersion, fillBatch})
	done, unknown, err := pair(fillScript.Run(context.Background(), s.c, keys, args...))
	if err != nil || len(stringList(unknown)) > 0 {
		t.Fatalf("filling: %v, kinds unknown %v", err, unknown)
	}
	return done == int64(1)
}

// lexTimers returns the timers under prefix as the script reads them from
// the sets of all timers.
func lexTimers(t *testing.T, s *Store, prefix string) ([]flow.Timer, int) {
	t.Helper()
	lo, hi := lexRange(prefix)
	total, pairs, err := pair(timersScript.Run(context.Background(), s.c,
		[]string{s.byDue, s.byKey}, prefix, lo, hi, 5000, layoutVersion))
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Timer
	list, _ := pairs.([]any)
	for i := 0; i+1 < len(list); i += 2 {
		due := parseInt(list[i+1].(string))
		out = append(out, flow.Timer{Key: list[i].(string), Due: time.UnixMilli(due)})
	}
	n, _ := total.(int64)
	return out, int(n)
}
