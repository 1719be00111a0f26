package storetest

import (
	"fmt"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func testSchedule(e *env) {
	t0 := e.now()
	e.mustApply(flow.Schedule("f/a", t0.Add(time.Minute)),
		flow.Schedule("f/b", t0.Add(2*time.Minute)))
	e.wantTimers("", flow.Timer{Key: "f/a", Due: t0.Add(time.Minute)},
		flow.Timer{Key: "f/b", Due: t0.Add(2 * time.Minute)})

	// A key has one timer: scheduling again moves it.
	e.mustApply(flow.Schedule("f/a", t0.Add(3*time.Minute)))
	e.wantTimers("", flow.Timer{Key: "f/b", Due: t0.Add(2 * time.Minute)},
		flow.Timer{Key: "f/a", Due: t0.Add(3 * time.Minute)})

	e.mustApply(flow.Unschedule("f/b"), flow.Unschedule("f/none"))
	e.wantTimers("", flow.Timer{Key: "f/a", Due: t0.Add(3 * time.Minute)})

	// A timer in the past is due at once; one moved away is not.
	e.mustApply(flow.Schedule("f/b", t0.Add(-time.Hour)))
	e.wantClaim(time.Minute, 10, "f/b")
	e.mustApply(flow.Schedule("f/b", t0.Add(-time.Hour)), flow.Unschedule("f/b"))
	e.clock.Advance(time.Hour)
	e.wantClaim(time.Minute, 10, "f/a")
}

func testTimersApartFromValues(e *env) {
	// The engine removes timers itself: a store keeps a timer whatever
	// happens to the key's value, and a timer needs no value.
	e.mustApply(flow.Create("d/a", []byte("a"), time.Second), flow.Schedule("d/a", e.now()),
		flow.Schedule("d/b", e.now().Add(time.Millisecond)))
	e.mustApply(flow.Delete("d/a", 0))
	e.clock.Advance(time.Hour)
	e.wantAbsent("d/a")
	e.wantTimers("d/", flow.Timer{Key: "d/a", Due: Epoch},
		flow.Timer{Key: "d/b", Due: Epoch.Add(time.Millisecond)})
}

func testClaimDueOnly(e *env) {
	t0 := e.now()
	e.mustApply(
		flow.Schedule("d/past", t0.Add(-time.Second)),
		flow.Schedule("d/now", t0),
		flow.Schedule("d/later", t0.Add(time.Millisecond)),
		flow.Schedule("f/much-later", t0.Add(time.Hour)))

	e.wantClaim(time.Minute, 10, "d/now", "d/past")
	e.clock.Advance(time.Millisecond)
	e.wantClaim(time.Minute, 10, "d/later")
	e.wantClaim(time.Minute, 10)
}

func testClaimLease(e *env) {
	t0 := e.now()
	lease := 30 * time.Second
	e.mustApply(flow.Schedule("d/a", t0), flow.Schedule("d/b", t0.Add(time.Second)))

	// A claimed key moves to now+lease and is not claimed again before.
	e.wantClaim(lease, 10, "d/a")
	e.wantTimers("d/", flow.Timer{Key: "d/b", Due: t0.Add(time.Second)},
		flow.Timer{Key: "d/a", Due: t0.Add(lease)})
	e.clock.Advance(time.Second)
	e.wantClaim(lease, 10, "d/b")
	e.clock.Advance(lease - time.Second - time.Millisecond)
	e.wantClaim(lease, 10)

	// Once the lease runs out, a worker that did not finish loses the key
	// to the next claim.
	e.clock.Advance(time.Millisecond)
	e.wantClaim(lease, 10, "d/a")
	e.clock.Advance(time.Second)
	e.wantClaim(lease, 10, "d/b")

	// A worker that finished unschedules or reschedules; then no lease
	// brings the key back.
	e.mustApply(flow.Unschedule("d/a"), flow.Schedule("d/b", e.now().Add(time.Hour)))
	e.clock.Advance(lease)
	e.wantClaim(lease, 10)
}

// testClaimNoLease claims with a lease of 0: a key stays due, is returned
// once per call, and keeps its timer.
func testClaimNoLease(e *env) {
	e.mustApply(flow.Schedule("d/a", e.now()), flow.Schedule("d/b", e.now().Add(-time.Second)))
	for range 3 {
		e.wantClaim(0, 10, "d/a", "d/b")
	}
	e.wantTimers("d/", flow.Timer{Key: "d/a", Due: e.now()}, flow.Timer{Key: "d/b", Due: e.now()})
}

func testClaimLimit(e *env) {
	for i := range 5 {
		e.mustApply(flow.Schedule(fmt.Sprintf("d/%d", i), e.now().Add(-time.Duration(i)*time.Second)))
	}
	seen := map[string]bool{}
	for _, n := range []int{2, 2, 1, 0} {
		got := e.claim(time.Minute, 2)
		if len(got) != n {
			e.Fatalf("Claim with limit 2 = %q; want %d keys", got, n)
		}
		for _, k := range got {
			if seen[k] {
				e.Fatalf("key %s claimed twice within its lease", k)
			}
			seen[k] = true
		}
	}
	if got := e.claim(time.Minute, 0); len(got) != 0 {
		e.Fatalf("Claim with limit 0 = %q", got)
	}
}

// testClaimOverADay runs a worker that claims once a minute through a day,
// then stops for hours, with timers spread over that time and some added
// on the way, due before the clock's minute: each is claimed once, in the
// first claim at or after its time.
func testClaimOverADay(e *env) {
	t0 := e.now()
	dues := map[string]time.Time{}
	for _, d := range []time.Duration{time.Minute, 90 * time.Second, 30 * time.Minute,
		2 * time.Hour, 20 * time.Hour, 24*time.Hour + time.Minute, 30 * time.Hour} {
		key := fmt.Sprintf("f/%d", d/time.Second)
		dues[key] = t0.Add(d)
		e.mustApply(flow.Schedule(key, dues[key]))
	}

	claimed := map[string]bool{}
	claim := func() {
		e.Helper()
		for _, k := range e.claim(0, 100) {
			if claimed[k] || e.now().Before(dues[k]) {
				e.Fatalf("at %v: %s claimed again or before %v", e.now().Sub(t0), k,
					dues[k].Sub(t0))
			}
			claimed[k] = true
			e.mustApply(flow.Unschedule(k))
		}
		for k, due := range dues {
			if !claimed[k] && !e.now().Before(due.Add(time.Minute)) {
				e.Fatalf("at %v: %s, due at %v, not claimed", e.now().Sub(t0), k, due.Sub(t0))
			}
		}
	}
	for i := range 25 * 60 {
		claim()
		if i%97 == 0 {
			// A timer set late, already due, as a delivery's first attempt is.
			key := fmt.Sprintf("d/%d", i)
			dues[key] = e.now().Add(-40 * time.Second)
			e.mustApply(flow.Schedule(key, dues[key]))
		}
		e.clock.Advance(time.Minute)
	}
	e.clock.Advance(6 * time.Hour)
	claim()
	if len(claimed) != len(dues) {
		e.Fatalf("claimed %d of %d timers", len(claimed), len(dues))
	}
}

func testTimersPrefix(e *env) {
	t0 := e.now()
	var ops []flow.Op
	for i := range 5 {
		due := t0.Add(time.Duration(5-i) * time.Minute)
		ops = append(ops, flow.Schedule(fmt.Sprintf("d/%d", i), due))
	}
	for i := range 3 {
		ops = append(ops, flow.Schedule(fmt.Sprintf("x/%d", i), t0.Add(time.Duration(i)*time.Hour)))
	}
	ops = append(ops, flow.Schedule("f/a", t0.Add(-time.Minute)), flow.Schedule("dd", t0))
	e.mustApply(ops...)

	got, n := e.timers("d/", 2)
	want := []flow.Timer{
		{Key: "d/4", Due: t0.Add(time.Minute)},
		{Key: "d/3", Due: t0.Add(2 * time.Minute)},
	}
	if n != 5 || len(got) != 2 || !sameTimer(got[0], want[0]) || !sameTimer(got[1], want[1]) {
		e.Fatalf("Timers(d/, 2) = %v, %d; want %v, 5", got, n, want)
	}
	if got, n := e.timers("x/", 0); len(got) != 0 || n != 3 {
		e.Fatalf("Timers(x/, 0) = %v, %d; want none, 3", got, n)
	}
	got, n = e.timers("", 100)
	if len(got) != 10 || n != 10 || got[0].Key != "f/a" || got[9].Key != "x/2" {
		e.Fatalf("Timers(\"\", 100) = %v, %d; want 10 from f/a to x/2", got, n)
	}
	if got, n := e.timers("zz", 10); len(got) != 0 || n != 0 {
		e.Fatalf("Timers(zz) = %v, %d; want none", got, n)
	}
	if got, n := e.timers("d", 1); n != 6 || len(got) != 1 || got[0].Key != "dd" {
		e.Fatalf("Timers(d, 1) = %v, %d; want dd first of 6", got, n)
	}
}

func sameTimer(a, b flow.Timer) bool { return a.Key == b.Key && a.Due.Equal(b.Due) }
