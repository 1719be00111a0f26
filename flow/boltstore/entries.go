package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Buckets of the database.
var (
	// kvBucket holds a key's entry (revision, expiry, value) at key ‖ 0,
	// and its timer's due time at key ‖ 1: side by side, as the engine
	// writes the two together, so that a write touches one page for both.
	kvBucket = []byte("kv")
	// tqBucket orders the timers: due ‖ key → nothing.
	tqBucket = []byte("tq")
)

// Tags that end a key in kvBucket.
const (
	entryTag byte = 0
	timerTag byte = 1
)

// tagged is key ‖ tag, a key of kvBucket.
func tagged(key string, tag byte) []byte {
	b := make([]byte, len(key)+1)
	copy(b, key)
	b[len(key)] = tag
	return b
}

// untag splits a key of kvBucket.
func untag(k []byte) (string, byte, bool) {
	if len(k) == 0 {
		return "", 0, false
	}
	return string(k[:len(k)-1]), k[len(k)-1], true
}

// An entry as kept in kvBucket: an 8-byte revision, an 8-byte expiry (0 for
// none) and the value.
type entry struct {
	rev   uint64
	exp   int64
	value []byte
}

const entryHeader = 16

func decodeEntry(b []byte) (entry, bool) {
	if len(b) < entryHeader {
		return entry{}, false
	}
	return entry{
		rev:   binary.BigEndian.Uint64(b[:8]),
		exp:   int64(binary.BigEndian.Uint64(b[8:16])),
		value: b[entryHeader:],
	}, true
}

// expiredAt says whether the entry's lifetime has passed at now, in Unix
// nanoseconds.
func (e entry) expiredAt(now int64) bool { return e.exp != 0 && now >= e.exp }

// live returns the entry at key unless it is absent or past its expiry.
// Its value is only valid within tx.
func live(tx *bolt.Tx, key string, now time.Time) (entry, bool) {
	e, ok := decodeEntry(tx.Bucket(kvBucket).Get(tagged(key, entryTag)))
	if !ok || e.expiredAt(now.UnixNano()) {
		return entry{}, false
	}
	return e, true
}

// putEntry stores value at key under a new revision.
func putEntry(tx *bolt.Tx, key string, value []byte, ttl time.Duration, now time.Time) error {
	// Revisions come from the bucket's sequence: never 0, never reused.
	kv := tx.Bucket(kvBucket)
	rev, err := kv.NextSequence()
	if err != nil {
		return err
	}
	var exp int64
	if ttl > 0 {
		exp = now.Add(ttl).UnixNano()
	}

	b := make([]byte, entryHeader+len(value))
	binary.BigEndian.PutUint64(b[:8], rev)
	binary.BigEndian.PutUint64(b[8:16], uint64(exp))
	copy(b[entryHeader:], value)
	return kv.Put(tagged(key, entryTag), b)
}

// deleteEntry removes the entry at key.
func deleteEntry(tx *bolt.Tx, key string) error {
	return tx.Bucket(kvBucket).Delete(tagged(key, entryTag))
}

// timeKey is an index key that sorts by time, then by key: the time as
// Unix nanoseconds with the sign bit flipped, so that times before 1970
// sort before those after.
func timeKey(n int64, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(n)^(1<<63))
	copy(b[8:], key)
	return b
}

// splitTimeKey is the inverse of timeKey.
func splitTimeKey(b []byte) (int64, string) {
	if len(b) < 8 {
		return 0, ""
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), string(b[8:])
}

// sweepChunk is how many expired entries one write transaction of Sweep
// removes, so that a long sweep never holds up the writes of requests.
const sweepChunk = 1000

// Sweep removes the entries whose lifetime has passed, so that the file
// follows the number of live flows; reads already treat them as absent. It
// returns how many it removed.
//
// It finds them by reading every entry's header in one read transaction,
// which writes do not wait for, rather than by an index of expiry times: an
// index would cost every write a second random page, where a sweep every
// few minutes reads the bucket in order.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	expired, err := s.expired(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: sweeping: %w", flow.ErrStoreUnavailable, err)
	}

	total := 0
	for len(expired) > 0 && ctx.Err() == nil {
		chunk := expired[:min(sweepChunk, len(expired))]
		expired = expired[len(chunk):]
		var n int
		err := s.update(func(tx *bolt.Tx) error {
			var err error
			n, err = deleteExpired(tx, chunk, s.now())
			return err
		})
		if err != nil {
			return total, fmt.Errorf("%w: sweeping: %w", flow.ErrStoreUnavailable, err)
		}
		total += n
	}
	return total, ctx.Err()
}

// expired lists the keys whose entries have expired.
func (s *Store) expired(ctx context.Context) ([]string, error) {
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		now := s.now().UnixNano()
		return tx.Bucket(kvBucket).ForEach(func(k, v []byte) error {
			key, tag, ok := untag(k)
			if !ok || tag != entryTag {
				return nil
			}
			if e, ok := decodeEntry(v); ok && e.expiredAt(now) {
				keys = append(keys, key)
			}
			return ctx.Err()
		})
	})
	return keys, err
}

// deleteExpired removes the entries of keys that are still expired at now,
// and returns how many it removed: one may have been written again since
// it was listed.
func deleteExpired(tx *bolt.Tx, keys []string, now time.Time) (int, error) {
	n := 0
	for _, key := range keys {
		if tx.Bucket(kvBucket).Get(tagged(key, entryTag)) == nil {
			continue
		}
		if _, ok := live(tx, key, now); ok {
			continue
		}
		if err := deleteEntry(tx, key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
