package boltstore_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow/boltstore"
)

// Fixture is a database the earlier store wrote on 2026-12-04: f/live
// (lives until 2100), f/gone (lived 50 ms), j/used (for ever), and timers
// of f/live and d/f/live.
const Fixture = "testdata/store.db"

// TestDumpReadsTheEarlierLayout reads the fixture: the live values, their
// expiries, and the timers, and not the expired value.
func TestDumpReadsTheEarlierLayout(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	values := map[string]string{}
	var liveExp time.Time
	timers := map[string]time.Time{}
	err := boltstore.Dump(context.Background(), Fixture, time.Second, now,
		func(key string, value []byte, exp time.Time) error {
			values[key] = string(value)
			if key == "f/live" {
				liveExp = exp
			}
			return nil
		},
		func(key string, due time.Time) error {
			timers[key] = due
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	if want := map[string]string{"f/live": "live flow", "j/used": "1"}; !maps.Equal(values, want) {
		t.Errorf("values = %v; want %v", values, want)
	}
	if liveExp.Year() != 2100 {
		t.Errorf("f/live expires %v; want in 2100", liveExp)
	}
	want := map[string]time.Time{
		"f/live":   time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		"d/f/live": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
	if !maps.EqualFunc(timers, want, time.Time.Equal) {
		t.Errorf("timers = %v; want %v", timers, want)
	}
}

// TestDumpOfAMissingFile fails rather than creating a database.
func TestDumpOfAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	err := boltstore.Dump(context.Background(), path, time.Second, time.Now(),
		func(string, []byte, time.Time) error { return nil },
		func(string, time.Time) error { return nil })
	if err == nil {
		t.Fatal("Dump of a missing database succeeded")
	}
}
