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
	// exBucket indexes the entries that expire: expiry ‖ key → nothing.
	exBucket = []byte("ex")
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

// live returns the entry at key unless it is absent or past its expiry.
// Its value is only valid within tx.
func live(tx *bolt.Tx, key string, now time.Time) (entry, bool) {
	e, ok := decodeEntry(tx.Bucket(kvBucket).Get(tagged(key, entryTag)))
	if !ok || (e.exp != 0 && now.UnixNano() >= e.exp) {
		return entry{}, false
	}
	return e, true
}

// putEntry stores value at key under a new revision, and indexes its
// expiry, replacing the old one's.
func putEntry(tx *bolt.Tx, key string, value []byte, ttl time.Duration, now time.Time) error {
	kv := tx.Bucket(kvBucket)
	if err := unindexExpiry(tx, key); err != nil {
		return err
	}

	// Revisions come from the bucket's sequence: never 0, never reused.
	rev, err := kv.NextSequence()
	if err != nil {
		return err
	}
	var exp int64
	if ttl > 0 {
		exp = now.Add(ttl).UnixNano()
		if err := tx.Bucket(exBucket).Put(timeKey(exp, key), nil); err != nil {
			return err
		}
	}

	b := make([]byte, entryHeader+len(value))
	binary.BigEndian.PutUint64(b[:8], rev)
	binary.BigEndian.PutUint64(b[8:16], uint64(exp))
	copy(b[entryHeader:], value)
	return kv.Put(tagged(key, entryTag), b)
}

// deleteEntry removes key and its expiry.
func deleteEntry(tx *bolt.Tx, key string) error {
	if err := unindexExpiry(tx, key); err != nil {
		return err
	}
	return tx.Bucket(kvBucket).Delete(tagged(key, entryTag))
}

// unindexExpiry removes the expiry index entry of the value at key, if any.
func unindexExpiry(tx *bolt.Tx, key string) error {
	old, ok := decodeEntry(tx.Bucket(kvBucket).Get(tagged(key, entryTag)))
	if !ok || old.exp == 0 {
		return nil
	}
	return tx.Bucket(exBucket).Delete(timeKey(old.exp, key))
}

// sweepExpired removes up to limit entries expired at now, by the expiry
// index, and returns how many it removed.
func sweepExpired(tx *bolt.Tx, now time.Time, limit int) (int, error) {
	// Collected first: deleting under a moving cursor skips entries.
	var keys []string
	c := tx.Bucket(exBucket).Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		exp, key := splitTimeKey(k)
		if exp > now.UnixNano() {
			break
		}
		keys = append(keys, key)
	}
	for _, key := range keys {
		if err := deleteEntry(tx, key); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
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

// Sweep removes the entries whose lifetime has passed, so that the file
// follows the number of live flows; reads already treat them as absent. It
// returns how many it removed.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	const chunk = 1000
	total := 0
	for ctx.Err() == nil {
		var n int
		err := s.update(func(tx *bolt.Tx) error {
			var err error
			n, err = sweepExpired(tx, s.now(), chunk)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("%w: sweeping: %w", flow.ErrStoreUnavailable, err)
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
	return total, ctx.Err()
}
