package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Sizes of the concurrent cases: enough goroutines to interleave, few
// enough operations to stay fast on a store across the network.
const (
	racers     = 16
	increments = 12
	claimable  = 60
)

// testConcurrentCreate races creates of one key: exactly one wins.
func testConcurrentCreate(e *env) {
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			errs[i] = e.apply(flow.Create("f/race", []byte(strconv.Itoa(i)), time.Hour),
				flow.Schedule("f/race", e.now().Add(time.Duration(i)*time.Millisecond)))
		})
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			e.Fatalf("racers %d and %d both created the key", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, flow.ErrConflict):
			e.Fatalf("racer %d: %v", i, err)
		}
	}
	if winner < 0 {
		e.Fatal("no racer created the key")
	}

	// The winner's value and the winner's timer, nothing of the losers.
	e.wantValue("f/race", strconv.Itoa(winner))
	due := e.now().Add(time.Duration(winner) * time.Millisecond)
	e.wantTimers("f/", flow.Timer{Key: "f/race", Due: due})
}

// testConcurrentIncrements has many goroutines add one to a counter by
// read, compare-and-set, retry: none of the increments is lost.
func testConcurrentIncrements(e *env) {
	e.mustApply(flow.Create("f/n", []byte("0"), 0))

	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for range racers {
		wg.Go(func() {
			for range increments {
				if err := e.increment("f/n"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.Fatal(err)
	}
	e.wantValue("f/n", strconv.Itoa(racers*increments))
}

// increment adds one to the number at key, retrying lost races.
func (e *env) increment(key string) error {
	for {
		ent, err := e.store.Get(e.ctx, key)
		if err != nil {
			return fmt.Errorf("reading counter: %w", err)
		}
		n, err := strconv.Atoi(string(ent.Value))
		if err != nil {
			return fmt.Errorf("decoding counter %q: %w", ent.Value, err)
		}
		err = e.apply(flow.Update(key, ent.Rev, []byte(strconv.Itoa(n+1)), 0))
		if !errors.Is(err, flow.ErrConflict) {
			return err
		}
	}
}

// testConcurrentClaims has several workers claim at once: every due key is
// handed to exactly one of them.
func testConcurrentClaims(e *env) {
	var ops []flow.Op
	for i := range claimable {
		due := e.now().Add(-time.Duration(i) * time.Millisecond)
		ops = append(ops, flow.Schedule(fmt.Sprintf("d/%02d", i), due))
	}
	e.mustApply(ops...)

	var mu sync.Mutex
	owner := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for w := range racers / 2 {
		wg.Go(func() {
			for {
				keys, err := e.store.Claim(e.ctx, e.now(), time.Minute, 3)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, k := range keys {
					if prev, dup := owner[k]; dup {
						err := fmt.Errorf("key %s claimed by workers %d and %d", k, prev, w)
						errs = append(errs, err)
					}
					owner[k] = w
				}
				mu.Unlock()
				if err != nil || len(keys) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.Fatal(err)
	}
	if len(owner) != claimable {
		e.Fatalf("%d of %d due keys claimed", len(owner), claimable)
	}
}
