package boltstore

import (
	"context"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Dump calls entry for every live entry and timer for every timer, in the
// order of their keys (a key's entry before its timer), from one consistent
// view of the store: what moving its contents into another store takes. A
// zero expiry is none.
func (s *Store) Dump(ctx context.Context,
	entry func(key string, value []byte, expires time.Time) error,
	timer func(key string, due time.Time) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		now := s.now().UnixNano()
		return tx.Bucket(kvBucket).ForEach(func(k, v []byte) error {
			key, tag, ok := untag(k)
			switch {
			case !ok || ctx.Err() != nil:
				return ctx.Err()
			case tag == timerTag:
				if n, ok := decodeDue(v); ok {
					return timer(key, time.Unix(0, n))
				}
				return nil
			case tag != entryTag:
				return nil
			}
			e, ok := decodeEntry(v)
			if !ok || e.expiredAt(now) {
				return nil
			}
			var exp time.Time
			if e.exp != 0 {
				exp = time.Unix(0, e.exp)
			}
			return entry(key, append([]byte(nil), e.value...), exp)
		})
	})
}

// Backup writes a consistent copy of the database to w while writes go on:
// one read transaction's view, which Open opens as it is. size, if not nil,
// learns the copy's length before it is written, so that a reader can tell
// a copy cut short.
func (s *Store) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
