package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// A key's timer is its due time in kvBucket, beside its entry, and the same
// time in the order of tqBucket; the two change together, in one
// transaction.

// setTimer moves key's timer to due.
func setTimer(tx *bolt.Tx, key string, due time.Time) error {
	if err := clearTimer(tx, key); err != nil {
		return err
	}
	n := due.UnixNano()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	if err := tx.Bucket(kvBucket).Put(tagged(key, timerTag), b[:]); err != nil {
		return err
	}
	return tx.Bucket(tqBucket).Put(timeKey(n, key), nil)
}

// clearTimer removes key's timer, if it has one.
func clearTimer(tx *bolt.Tx, key string) error {
	kv := tx.Bucket(kvBucket)
	k := tagged(key, timerTag)
	n, ok := decodeDue(kv.Get(k))
	if !ok {
		return nil
	}
	if err := tx.Bucket(tqBucket).Delete(timeKey(n, key)); err != nil {
		return err
	}
	return kv.Delete(k)
}

// decodeDue reads a stored due time, in Unix nanoseconds.
func decodeDue(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// Claim implements flow.Store: it reads the due timers from the front of
// the order, then moves each to now+lease.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := s.update(func(tx *bolt.Tx) error {
		keys = keys[:0]
		c := tx.Bucket(tqBucket).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			due, key := splitTimeKey(k)
			if due > now.UnixNano() {
				break
			}
			keys = append(keys, key)
		}

		// Moved only now, so that a short lease cannot bring a key back
		// into this same claim.
		for _, key := range keys {
			if err := setTimer(tx, key, now.Add(lease)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: claiming: %w", flow.ErrStoreUnavailable, err)
	}
	return keys, nil
}

// Timers implements flow.Store, reading only the timers of keys that start
// with prefix.
func (s *Store) Timers(ctx context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var out []flow.Timer
	err := s.db.View(func(tx *bolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(kvBucket).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			// The entries between the timers are skipped; so is a key
			// that only its tag brings under the prefix.
			key, tag, _ := untag(k)
			if n, ok := decodeDue(v); ok && tag == timerTag && strings.HasPrefix(key, prefix) {
				out = append(out, flow.Timer{Key: key, Due: time.Unix(0, n)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reading timers: %w", flow.ErrStoreUnavailable, err)
	}
	flow.SortTimers(out)
	return out[:min(limit, len(out))], len(out), nil
}
