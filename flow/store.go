package flow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A Store keeps flow records, deliveries and their timers. Every method is
// atomic with respect to every other user of the same backing store, so that
// several handler instances can share one.
//
// A key holds a value and a revision the store assigns on every write; a
// conditional write names the revision it read, so a lost race is detected
// (ErrConflict) instead of overwriting. Beside the values, a store keeps at
// most one timer per key: the time a worker should next look at it.
type Store interface {
	// Get returns the entry at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)

	// Apply performs all ops if every condition among them holds, and none
	// otherwise, in which case it returns ErrConflict.
	Apply(ctx context.Context, ops ...Op) error

	// Claim returns up to limit keys whose timers are due at now, moving
	// each timer to now+lease so that no other worker claims the key until
	// the lease runs out.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error)

	// Timers returns up to limit timers of keys starting with prefix, in
	// the order of SortTimers, and how many such timers the store holds in
	// all.
	Timers(ctx context.Context, prefix string, limit int) ([]Timer, int, error)
}

// An Entry is a stored value and its revision.
type Entry struct {
	Value []byte
	// Rev changes on every write; it is never 0 for a stored entry.
	Rev uint64
}

// A Timer is when a key is next due.
type Timer struct {
	Key string
	Due time.Time
}

// SortTimers orders timers as Timers returns them: by due time, then by key,
// so that timers due at the same time come in a stable order.
func SortTimers(ts []Timer) {
	slices.SortFunc(ts, func(a, b Timer) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// OpKind says what an Op does.
type OpKind uint8

// The operations Apply performs.
const (
	// OpCreate stores a value; the key must be absent.
	OpCreate OpKind = iota + 1
	// OpUpdate stores a value; the key must be at revision Rev.
	OpUpdate
	// OpDelete removes a key; if Rev is not 0, it must be at revision Rev.
	OpDelete
	// OpSchedule sets the key's timer to Due.
	OpSchedule
	// OpUnschedule removes the key's timer, if any.
	OpUnschedule
)

// An Op is one write of an atomic Apply.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
	Rev   uint64
	// TTL is how long the value lives; 0 for ever.
	TTL time.Duration
	// Due is the timer's time, for OpSchedule.
	Due time.Time
}

// CheckOp returns why op cannot apply, if it cannot, to its key as a store
// holds it: live (found) at revision rev, or not. Every store checks its
// conditions this way.
func CheckOp(op Op, found bool, rev uint64) error {
	switch op.Kind {
	case OpCreate:
		if found {
			return fmt.Errorf("creating %q: %w", op.Key, ErrConflict)
		}
	case OpUpdate:
		if !found || rev != op.Rev {
			return fmt.Errorf("updating %q: %w", op.Key, ErrConflict)
		}
	case OpDelete:
		if op.Rev != 0 && (!found || rev != op.Rev) {
			return fmt.Errorf("deleting %q: %w", op.Key, ErrConflict)
		}
	case OpSchedule, OpUnschedule:
	default:
		return fmt.Errorf("unknown op kind %d", op.Kind)
	}
	return nil
}

// Create returns an op storing value at an absent key.
func Create(key string, value []byte, ttl time.Duration) Op {
	return Op{Kind: OpCreate, Key: key, Value: value, TTL: ttl}
}

// Update returns an op storing value at a key still at revision rev.
func Update(key string, rev uint64, value []byte, ttl time.Duration) Op {
	return Op{Kind: OpUpdate, Key: key, Rev: rev, Value: value, TTL: ttl}
}

// Delete returns an op removing a key; rev 0 removes it whatever it holds.
func Delete(key string, rev uint64) Op { return Op{Kind: OpDelete, Key: key, Rev: rev} }

// Schedule returns an op setting the key's timer.
func Schedule(key string, due time.Time) Op { return Op{Kind: OpSchedule, Key: key, Due: due} }

// Unschedule returns an op removing the key's timer.
func Unschedule(key string) Op { return Op{Kind: OpUnschedule, Key: key} }
