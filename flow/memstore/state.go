package memstore

import (
	"strings"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// State is the data of a store kept in memory, without locking: values with
// their revisions and lifetimes, and timers. Store guards one with a mutex;
// a durable store keeps one as its copy in memory, under its own lock.
type State struct {
	rev    uint64
	items  map[string]Item
	timers map[string]time.Time
	due    timeHeap // timers, possibly stale: checked against timers
	expiry timeHeap // lifetimes, possibly stale: checked against items
}

// An Item is a stored value.
type Item struct {
	Value []byte
	Rev   uint64
	// Exp is when the value stops being live; zero for never.
	Exp time.Time
	// Tag is the holder's own mark, kept and otherwise ignored: a durable
	// store notes which of its log writes holds the value.
	Tag uint64
}

// NewState returns an empty state.
func NewState() *State {
	return &State{items: map[string]Item{}, timers: map[string]time.Time{}}
}

// Live returns the item at key unless it is absent or expired at now.
func (s *State) Live(key string, now time.Time) (Item, bool) {
	it, ok := s.items[key]
	if !ok || (!it.Exp.IsZero() && !now.Before(it.Exp)) {
		return Item{}, false
	}
	return it, true
}

// Check returns why ops cannot all apply at now, if they cannot.
func (s *State) Check(ops []flow.Op, now time.Time) error {
	for _, op := range ops {
		it, ok := s.Live(op.Key, now)
		if err := flow.CheckOp(op, ok, it.Rev); err != nil {
			return err
		}
	}
	return nil
}

// Apply performs one checked op at now. A create or update takes the next
// revision and returns the item it stored, tagged with tag.
func (s *State) Apply(op flow.Op, now time.Time, tag uint64) Item {
	switch op.Kind {
	case flow.OpCreate, flow.OpUpdate:
		s.rev++
		it := Item{Value: op.Value, Rev: s.rev, Tag: tag}
		if op.TTL > 0 {
			it.Exp = now.Add(op.TTL)
		}
		s.Put(op.Key, it)
		return it
	case flow.OpDelete:
		s.Delete(op.Key)
	case flow.OpSchedule:
		s.SetTimer(op.Key, op.Due)
	case flow.OpUnschedule:
		s.ClearTimer(op.Key)
	}
	return Item{}
}

// Put stores it at key as it is, raising the revision counter to its
// revision if that is higher: how a durable store loads what it wrote.
func (s *State) Put(key string, it Item) {
	s.rev = max(s.rev, it.Rev)
	if !it.Exp.IsZero() {
		s.expiry.push(timed{at: it.Exp, key: key})
	}
	s.items[key] = it
}

// Delete removes the value at key.
func (s *State) Delete(key string) { delete(s.items, key) }

// SetTimer sets the key's timer to due.
func (s *State) SetTimer(key string, due time.Time) {
	s.timers[key] = due
	s.due.push(timed{at: due, key: key})
}

// ClearTimer removes the key's timer.
func (s *State) ClearTimer(key string) { delete(s.timers, key) }

// Rev is the last revision given out; SetRev raises it, so that revisions
// stay new across a durable store's restarts even when the values that
// held the highest are gone.
func (s *State) Rev() uint64 { return s.rev }

// SetRev raises the revision counter to rev, if it is lower.
func (s *State) SetRev(rev uint64) { s.rev = max(s.rev, rev) }

// Sweep drops the values whose lifetimes ended by now, so that memory
// follows the number of live flows, and returns how many it dropped.
func (s *State) Sweep(now time.Time) int {
	n := 0
	for s.expiry.Len() > 0 && !now.Before(s.expiry[0].at) {
		t := s.expiry.pop()
		if it, ok := s.items[t.key]; ok && it.Exp.Equal(t.at) {
			delete(s.items, t.key)
			n++
		}
	}
	return n
}

// Claim returns up to limit keys whose timers are due at now, and moves
// their timers to now+lease.
func (s *State) Claim(now time.Time, lease time.Duration, limit int) []string {
	var keys []string
	for len(keys) < limit && s.due.Len() > 0 && !now.Before(s.due[0].at) {
		t := s.due.pop()
		if due, ok := s.timers[t.key]; !ok || !due.Equal(t.at) {
			continue // rescheduled or unscheduled since
		}
		keys = append(keys, t.key)
	}

	// Moved only now, so that a short lease cannot bring a key back into
	// this same claim.
	next := now.Add(lease)
	for _, k := range keys {
		s.SetTimer(k, next)
	}
	return keys
}

// Timers returns up to limit timers of keys starting with prefix, in the
// order of flow.SortTimers, and how many there are in all.
func (s *State) Timers(prefix string, limit int) ([]flow.Timer, int) {
	var out []flow.Timer
	for k, due := range s.timers {
		if strings.HasPrefix(k, prefix) {
			out = append(out, flow.Timer{Key: k, Due: due})
		}
	}
	total := len(out)
	flow.SortTimers(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, total
}

// Len returns how many values the state holds, expired ones not yet swept
// included.
func (s *State) Len() int { return len(s.items) }

// A Copy is everything a state holds at one moment, apart from it.
type Copy struct {
	Rev    uint64
	Items  []Keyed
	Timers []flow.Timer
}

// Keyed is an item with its key.
type Keyed struct {
	Key string
	Item
}

// copyChunk is how many entries Copy copies between two calls of pause.
const copyChunk = 4096

// Copy returns the live items at now and every timer. The values are
// shared, not copied: the state never changes a value it holds.
//
// pause, if not nil, is called after every copyChunk entries; the caller's
// lock may let other changes in meanwhile. The copy is then fuzzy: an entry
// that no change touches while Copy runs is copied as it was when Copy
// began, an entry a change touches may be copied before or after it, and
// one a change adds may be left out. Replaying those changes on such a copy
// ends in the state after them.
func (s *State) Copy(now time.Time, pause func()) Copy {
	c := Copy{Items: make([]Keyed, 0, len(s.items)),
		Timers: make([]flow.Timer, 0, len(s.timers))}
	n := 0
	step := func() {
		if n++; pause != nil && n%copyChunk == 0 {
			pause()
		}
	}
	for k, it := range s.items {
		if it.Exp.IsZero() || now.Before(it.Exp) {
			c.Items = append(c.Items, Keyed{Key: k, Item: it})
		}
		step()
	}
	for k, due := range s.timers {
		c.Timers = append(c.Timers, flow.Timer{Key: k, Due: due})
		step()
	}
	c.Rev = s.rev
	return c
}
