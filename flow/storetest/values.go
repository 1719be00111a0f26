package storetest

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func testGetMissing(e *env) {
	e.wantAbsent("f/none")
	if err := e.apply(); err != nil {
		e.Fatalf("Apply with no ops: %v", err)
	}
}

func testCreateIfAbsent(e *env) {
	e.mustApply(flow.Create("f/a", []byte("one"), 0))
	first := e.wantValue("f/a", "one")

	e.wantConflict(e.apply(flow.Create("f/a", []byte("two"), 0)), "creating a present key")
	if got := e.wantValue("f/a", "one"); got.Rev != first.Rev {
		e.Fatalf("a refused create changed the revision: %d to %d", first.Rev, got.Rev)
	}
}

func testUpdateByRevision(e *env) {
	e.mustApply(flow.Create("f/a", []byte("one"), 0))
	first := e.get("f/a")

	e.mustApply(flow.Update("f/a", first.Rev, []byte("two"), 0))
	second := e.wantValue("f/a", "two")
	if second.Rev == first.Rev {
		e.Fatalf("update kept revision %d", first.Rev)
	}

	err := e.apply(flow.Update("f/a", first.Rev, []byte("three"), 0))
	e.wantConflict(err, "updating at a stale revision")
	e.wantValue("f/a", "two")
	e.wantConflict(e.apply(flow.Update("f/none", first.Rev, []byte("x"), 0)), "updating an absent key")
	e.wantAbsent("f/none")
}

func testConditionalDelete(e *env) {
	e.mustApply(flow.Create("f/a", []byte("one"), 0), flow.Create("f/b", []byte("two"), 0))
	a := e.get("f/a")

	e.wantConflict(e.apply(flow.Delete("f/a", a.Rev+1)), "deleting at a wrong revision")
	e.wantValue("f/a", "one")
	e.mustApply(flow.Delete("f/a", a.Rev))
	e.wantAbsent("f/a")
	e.wantConflict(e.apply(flow.Delete("f/a", a.Rev)), "deleting an absent key at a revision")

	// Revision 0 deletes whatever is there, and nothing is no error.
	e.mustApply(flow.Delete("f/b", 0))
	e.wantAbsent("f/b")
	e.mustApply(flow.Delete("f/b", 0))
}

func testAllOrNothing(e *env) {
	e.mustApply(flow.Create("f/b", []byte("b"), 0), flow.Create("f/c", []byte("c"), 0))
	b, c := e.get("f/b"), e.get("f/c")

	// One failed condition, last in the batch, stops every write before it.
	err := e.apply(
		flow.Create("f/a", []byte("a"), 0),
		flow.Update("f/b", b.Rev, []byte("b2"), 0),
		flow.Delete("f/c", 0),
		flow.Schedule("f/a", e.now()),
		flow.Unschedule("f/x"),
		flow.Update("f/c", c.Rev+1, []byte("c2"), 0))
	e.wantConflict(err, "a batch with one stale revision")
	e.wantAbsent("f/a")
	e.wantValue("f/b", "b")
	e.wantValue("f/c", "c")
	e.wantTimers("")

	// The same batch with every condition right does it all.
	e.mustApply(
		flow.Create("f/a", []byte("a"), 0),
		flow.Update("f/b", b.Rev, []byte("b2"), 0),
		flow.Delete("d/c", 0),
		flow.Schedule("f/a", e.now()),
		flow.Update("f/c", c.Rev, []byte("c2"), 0))
	e.wantValue("f/a", "a")
	e.wantValue("f/b", "b2")
	e.wantValue("f/c", "c2")
	e.wantTimers("", flow.Timer{Key: "f/a", Due: e.now()})
}

func testUnknownOp(e *env) {
	err := e.apply(flow.Create("f/a", []byte("a"), 0), flow.Op{Kind: 99, Key: "f/b"})
	if err == nil || errors.Is(err, flow.ErrConflict) {
		e.Fatalf("Apply with an unknown op: %v; want an error that is not a conflict", err)
	}
	e.wantAbsent("f/a")
}

func testValuesByteForByte(e *env) {
	values := map[string][]byte{
		"f/empty":  {},
		"f/binary": {0, 1, 0xff, '\r', '\n', 0, '"', '\\'},
		"f/large":  bytes.Repeat([]byte("0123456789abcdef"), 8<<10),
		"f/text":   []byte(strings.Repeat("ü{}[]", 100)),
	}
	for k, v := range values {
		e.mustApply(flow.Create(k, v, time.Hour))
	}
	for k, v := range values {
		if got := e.get(k); !bytes.Equal(got.Value, v) {
			e.Fatalf("Get(%q) returned %d bytes that differ from the %d stored",
				k, len(got.Value), len(v))
		}
	}
}

func testLifetimeByClock(e *env) {
	e.mustApply(flow.Create("j/a", []byte("a"), 10*time.Second), flow.Create("f/b", []byte("b"), 0))
	old := e.get("j/a")

	e.clock.Advance(10*time.Second - time.Millisecond)
	e.wantValue("j/a", "a")
	e.clock.Advance(time.Millisecond)
	e.wantAbsent("j/a")

	// An expired key is absent for writes too.
	e.wantConflict(e.apply(flow.Update("j/a", old.Rev, []byte("x"), 0)), "updating an expired key")
	e.wantConflict(e.apply(flow.Delete("j/a", old.Rev)), "deleting an expired key at its revision")
	e.mustApply(flow.Create("j/a", []byte("again"), time.Minute))
	e.wantValue("j/a", "again")

	// A value without a lifetime stays.
	e.clock.Advance(1000 * time.Hour)
	e.wantValue("f/b", "b")
}

func testWriteResetsLifetime(e *env) {
	e.mustApply(flow.Create("f/a", []byte("a"), 10*time.Second),
		flow.Create("f/b", []byte("b"), 10*time.Second))
	e.clock.Advance(5 * time.Second)

	// An update sets a new lifetime from now, or none.
	e.mustApply(flow.Update("f/a", e.get("f/a").Rev, []byte("a2"), 10*time.Second),
		flow.Update("f/b", e.get("f/b").Rev, []byte("b2"), 0))
	e.clock.Advance(10*time.Second - time.Millisecond)
	e.wantValue("f/a", "a2")
	e.clock.Advance(time.Millisecond)
	e.wantAbsent("f/a")
	e.clock.Advance(1000 * time.Hour)
	e.wantValue("f/b", "b2")
}

func testRevisionsNeverReused(e *env) {
	seen := map[uint64]string{}
	note := func(key string) {
		e.Helper()
		rev := e.get(key).Rev
		if prev, dup := seen[rev]; dup {
			e.Fatalf("revision %d given to %s and again to %s", rev, prev, key)
		}
		seen[rev] = key
	}

	for i := range 20 {
		e.mustApply(flow.Create("f/a", []byte("a"), time.Second), flow.Create("f/b", []byte("b"), 0))
		note("f/a")
		note("f/b")
		old := e.get("f/a").Rev
		e.mustApply(flow.Update("f/b", e.get("f/b").Rev, []byte{byte(i)}, 0))
		note("f/b")

		// A key deleted or expired and made again never comes back at an
		// old revision, so a writer holding one cannot overwrite it.
		e.mustApply(flow.Delete("f/b", 0))
		e.clock.Advance(time.Second)
		e.mustApply(flow.Create("f/a", []byte("new"), time.Second))
		err := e.apply(flow.Update("f/a", old, []byte("stale"), 0))
		e.wantConflict(err, "updating at a revision from before")
		note("f/a")
		e.mustApply(flow.Delete("f/a", 0))
	}
}
