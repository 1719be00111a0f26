package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/redisstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// storeIn returns a store on client in namespace ns, so that several
// stores, like several instances, share their keys.
func storeIn(tb testing.TB, client redis.UniversalClient, ns string,
	now func() time.Time) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(client, redisstore.Config{Prefix: "test:", Namespace: ns, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// model is what the timers of a store should be.
type model map[string]time.Time

// want returns the first limit timers of m under prefix, and their count.
func (m model) want(prefix string, limit int) ([]flow.Timer, int) {
	var all []flow.Timer
	for k, due := range m {
		if strings.HasPrefix(k, prefix) {
			all = append(all, flow.Timer{Key: k, Due: due})
		}
	}
	flow.SortTimers(all)
	return all[:min(limit, len(all))], len(all)
}

// check compares the timers of s under kinds, other prefixes and none
// with m.
func (m model) check(s *redisstore.Store) error {
	for _, prefix := range []string{"d/", "x/", "f/", "/", "zz/", "", "d", "d/x/"} {
		for _, limit := range []int{0, 1, 3, 100} {
			got, n, err := s.Timers(context.Background(), prefix, limit)
			want, wantN := m.want(prefix, limit)
			if err != nil || n != wantN || !sameTimers(got, want) {
				return fmt.Errorf("Timers(%q, %d) = %v, %d, %v; want %v, %d",
					prefix, limit, got, n, err, want, wantN)
			}
		}
	}
	return nil
}

// mustMatch fails the test when the timers of s are not those of m.
func (m model) mustMatch(t *testing.T, s *redisstore.Store, when string) {
	t.Helper()
	if err := m.check(s); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
}

func sameTimers(a, b []flow.Timer) bool {
	return slices.EqualFunc(a, b, func(a, b flow.Timer) bool {
		return a.Key == b.Key && a.Due.Equal(b.Due)
	})
}

// Timers by kind answer from the kind's set, which schedules, reschedules,
// unschedules and claims keep like the sets of all timers: the earliest
// first, and the right count. Prefixes that are not kinds answer as well.
func TestTimersByKind(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t)
		timersByKind(t, closeAtEnd(t, redis.NewClient(&redis.Options{Addr: srv.Addr})))
	})
	t.Run("cluster", func(t *testing.T) {
		srv := redistest.StartCluster(t)
		timersByKind(t, closeAtEnd(t, redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: []string{srv.Addr},
		})))
	})
}

func timersByKind(t *testing.T, client redis.UniversalClient) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.Epoch)
	ns := fmt.Sprintf("kinds%d", namespaces.Add(1))
	// The claimer has scheduled nothing: it learns the kinds from Redis.
	writer, claimer := storeIn(t, client, ns, clock.Now), storeIn(t, client, ns, clock.Now)
	m := model{}
	apply := func(ops ...flow.Op) {
		t.Helper()
		if err := writer.Apply(ctx, ops...); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.Kind == flow.OpSchedule {
				m[op.Key] = op.Due
			} else {
				delete(m, op.Key)
			}
		}
	}

	t0 := clock.Now()
	var ops []flow.Op
	for i := range 10 {
		ops = append(ops, flow.Schedule(fmt.Sprintf("d/%d", i), t0.Add(time.Duration(10-i)*time.Minute)))
	}
	for i := range 3 {
		ops = append(ops, flow.Schedule(fmt.Sprintf("x/%d", i), t0.Add(time.Duration(i)*time.Hour)))
	}
	apply(append(ops, flow.Schedule("f/a", t0.Add(30*time.Second)), flow.Schedule("dd", t0),
		flow.Schedule("d/x/y", t0.Add(time.Minute)), flow.Schedule("/root", t0))...)
	m.mustMatch(t, writer, "scheduled")

	apply(flow.Schedule("d/3", t0.Add(-time.Minute)), flow.Schedule("x/2", t0))
	apply(flow.Unschedule("d/5"), flow.Unschedule("x/1"), flow.Unschedule("d/none"))
	m.mustMatch(t, writer, "rescheduled and unscheduled")

	// Claims move timers, in the sets of their kinds too.
	lease := 5 * time.Minute
	for range 4 {
		clock.Advance(2 * time.Minute)
		got, err := claimer.Claim(ctx, clock.Now(), lease, 3)
		want := m.dueAt(clock.Now(), 3)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Claim at %v = %q, %v; want %q", clock.Now().Sub(t0), got, err, want)
		}
		for _, k := range got {
			m[k] = clock.Now().Add(lease)
		}
		m.mustMatch(t, writer, "claimed")
		m.mustMatch(t, claimer, "claimed, read by the claimer")
	}
}

// dueAt returns the keys of the first limit timers of m due at now.
func (m model) dueAt(now time.Time, limit int) []string {
	all, _ := m.want("", len(m))
	var keys []string
	for _, tm := range all {
		if !tm.Due.After(now) && len(keys) < limit {
			keys = append(keys, tm.Key)
		}
	}
	return keys
}

// A store written before there were sets of kinds has its timers only in
// the sets of all timers. The sets of kinds fill on the first call that
// needs them, even with Redis down when the store was made, once, even
// with several instances asking at once.
func TestTimersFillOldLayout(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	client := closeAtEnd(t, redis.NewClient(&redis.Options{
		Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1,
	}))
	clock := storetest.NewClock(storetest.Epoch)

	// More timers than a batch of the filling, of several kinds.
	m := model{}
	var ops []flow.Op
	for i := range 2400 {
		m[fmt.Sprintf("d/%04d", i)] = clock.Now().Add(time.Duration(i%700) * time.Second)
	}
	for i := range 60 {
		m[fmt.Sprintf("x/%d", i)] = clock.Now().Add(-time.Duration(i) * time.Minute)
		m[fmt.Sprintf("f/%d", i)] = clock.Now().Add(time.Duration(i) * time.Hour)
	}
	m["dd"] = clock.Now()
	for k, due := range m {
		ops = append(ops, flow.Schedule(k, due))
	}
	if err := storeIn(t, client, "old", clock.Now).Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	toOldLayout(t, srv.Client(), "test:{old}:")

	// Redis is down when the instances start, and comes back.
	srv.Stop()
	stores := make([]*redisstore.Store, 4)
	for i := range stores {
		stores[i] = storeIn(t, client, "old", clock.Now)
	}
	if _, _, err := stores[0].Timers(ctx, "d/", 1); !errors.Is(err, flow.ErrStoreUnavailable) {
		t.Fatalf("Timers with Redis down: %v; want ErrStoreUnavailable", err)
	}
	srv.Start()

	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			if err := m.check(s); err != nil {
				t.Errorf("instance %d, filling: %v", i, err)
			}
		})
	}
	wg.Wait()
	c := srv.Client()
	for kind, n := range map[string]int64{"d/": 2400, "x/": 60, "f/": 60} {
		if got := c.ZCard(ctx, "test:{old}:due:"+kind).Val(); got != n {
			t.Errorf("the set of %s holds %d timers; want %d", kind, got, n)
		}
	}
	layout := c.HGetAll(ctx, "test:{old}:layout").Val()
	if len(layout) != 1 || layout["v"] == "" {
		t.Errorf("layout marker = %v; want a version and no cursor", layout)
	}

	// Another instance finds the sets filled, and fills nothing: it runs
	// the script of Timers alone, which writes nothing.
	resetStats(t, c)
	later := storeIn(t, client, "old", clock.Now)
	m.mustMatch(t, later, "an instance started later")
	calls := commandCalls(t, c)
	if calls["evalsha"]+calls["eval"] != 32 || calls["zadd"] != 0 || calls["hset"] != 0 {
		t.Errorf("a later instance made 32 calls of Timers with %d scripts run, %d ZADD and "+
			"%d HSET; want 32 and none", calls["evalsha"]+calls["eval"], calls["zadd"], calls["hset"])
	}
}

// toOldLayout removes from the keys under base the sets of kinds and the
// layout marker, leaving what a store written before them held.
func toOldLayout(t *testing.T, c *redis.Client, base string) {
	t.Helper()
	ctx := context.Background()
	kinds, err := c.Keys(ctx, base+"due:*").Result()
	if err != nil || len(kinds) == 0 {
		t.Fatalf("sets of kinds = %q, %v", kinds, err)
	}
	if err := c.Del(ctx, append(kinds, base+"layout")...).Err(); err != nil {
		t.Fatal(err)
	}
}

// Timers of a kind read the first timers of the kind's set, not every
// timer of the kind: Redis runs a few commands for them, where a prefix
// that is not a kind costs one per matching timer.
func TestTimersByKindReadsFew(t *testing.T) {
	const n = 50_000
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	s := storeIn(t, c, "many", time.Now)
	fillDeliveries(t, s, n)
	if _, _, err := s.Timers(ctx, "d/", 1); err != nil {
		t.Fatal(err)
	}

	measure := func(prefix string) (int64, time.Duration) {
		t.Helper()
		resetStats(t, c)
		began := time.Now()
		ts, total, err := s.Timers(ctx, prefix, 1)
		took := time.Since(began)
		if err != nil || total != n || len(ts) != 1 || ts[0].Key != "d/00000" {
			t.Fatalf("Timers(%q, 1) = %v, %d, %v; want d/00000 first of %d", prefix, ts, total, err, n)
		}
		var inside int64
		for cmd, calls := range commandCalls(t, c) {
			if cmd != "evalsha" && cmd != "eval" && !strings.HasPrefix(cmd, "config") {
				inside += calls
			}
		}
		return inside, took
	}
	byKind, kindTook := measure("d/")
	byPrefix, prefixTook := measure("d")
	t.Logf("Timers of %d: by kind %d commands in %v; by prefix %d in %v",
		n, byKind, kindTook, byPrefix, prefixTook)
	if byPrefix < n {
		t.Fatalf("by prefix, Redis ran %d commands; the count misses the reads of %d timers",
			byPrefix, n)
	}
	if byKind > 5 {
		t.Errorf("by kind, Redis ran %d commands; want a few, whatever the number of timers",
			byKind)
	}
}

// fillDeliveries schedules n delivery timers, d/00000 the earliest.
func fillDeliveries(tb testing.TB, s *redisstore.Store, n int) {
	tb.Helper()
	t0 := time.Now().Add(-time.Hour)
	var ops []flow.Op
	for i := range n {
		due := t0.Add(time.Duration(i) * time.Millisecond)
		ops = append(ops, flow.Schedule(fmt.Sprintf("d/%05d", i), due))
		if len(ops) == 1000 || i == n-1 {
			if err := s.Apply(context.Background(), ops...); err != nil {
				tb.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

func resetStats(t *testing.T, c *redis.Client) {
	t.Helper()
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// commandCalls reads from INFO commandstats how many times Redis ran each
// command, those run by scripts included.
func commandCalls(t *testing.T, c *redis.Client) map[string]int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(stats, ",")
		calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseInt(n, 10, 64)
	}
	return calls
}
