// Package boltstore reads the flows of the storage store's earlier layout
// on the local disk: one bbolt database file per handler, store.db. The
// store now keeps a log instead (flow/logstore); this package is what moves
// a database's flows into it at the first start after an upgrade.
//
// The database holds, in bucket kv, a key's entry at key ‖ 0 (an 8-byte
// revision, an 8-byte expiry in Unix nanoseconds, 0 for none, and the
// value) and its timer at key ‖ 1 (an 8-byte due time), all big-endian.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var kvBucket = []byte("kv")

// Tags that end a key in kvBucket.
const (
	entryTag byte = 0
	timerTag byte = 1
)

// Dump calls entry for every value of the database at path still live at
// now, and timer for every timer, from one read transaction. It waits up to
// lockTimeout for a process that holds the database. A zero expiry is none.
func Dump(ctx context.Context, path string, lockTimeout time.Duration, now time.Time,
	entry func(key string, value []byte, expires time.Time) error,
	timer func(key string, due time.Time) error) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("opening %s: another process holds it: %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}

	err = db.View(func(tx *bolt.Tx) error {
		kv := tx.Bucket(kvBucket)
		if kv == nil {
			return nil
		}
		return kv.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil || len(k) == 0 {
				return err
			}
			return dumpOne(string(k[:len(k)-1]), k[len(k)-1], v, now, entry, timer)
		})
	})
	return errors.Join(err, db.Close())
}

// dumpOne passes one record of kvBucket, key's entry or timer by tag, to
// entry or timer. A record too short for its kind is skipped.
func dumpOne(key string, tag byte, v []byte, now time.Time,
	entry func(string, []byte, time.Time) error, timer func(string, time.Time) error) error {
	switch {
	case tag == timerTag && len(v) == 8:
		return timer(key, time.Unix(0, int64(binary.BigEndian.Uint64(v))))
	case tag != entryTag || len(v) < 16:
		return nil
	}

	var exp time.Time
	if n := int64(binary.BigEndian.Uint64(v[8:16])); n != 0 {
		if exp = time.Unix(0, n); !now.Before(exp) {
			return nil
		}
	}
	return entry(key, append([]byte(nil), v[16:]...), exp)
}
