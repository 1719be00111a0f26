// Package boltstore is a flow.Store in one bbolt database file: durable
// across restarts, on the local disk of one process. bbolt holds the file
// with an exclusive lock, so one process at a time serves a database; the
// processes of a cluster share a Redis store instead.
//
// Writes are group-committed: Apply and Claim queue their changes for one
// committer, which runs every change waiting into one transaction and syncs
// the file once for all of them. A lone write commits at once; under load,
// the writes that arrive during one sync share the next.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("boltstore: store closed")

// Options tune Open.
type Options struct {
	// Now is the store's clock. Default: time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to release
	// the file. Default: 10s.
	LockTimeout time.Duration
	// MaxBatch is the most changes one transaction commits. Default: 512.
	MaxBatch int
}

// Store is a flow.Store in a bbolt database. It is safe for concurrent use.
type Store struct {
	db  *bolt.DB
	now func() time.Time

	calls     chan *call
	quit      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	maxBatch  int
}

// Open opens or creates the database at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}

	// The free page list is rebuilt at open rather than written with every
	// commit, which keeps commits small.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.LockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: another process holds it: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{kvBucket, tqBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing %s: %w", path, err)
	}

	s := &Store{
		db:       db,
		now:      opts.Now,
		calls:    make(chan *call),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		maxBatch: opts.MaxBatch,
	}
	go s.commitLoop()
	return s, nil
}

// Close stops the committer after the changes it has taken, and closes the
// file. Calls after the first return nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.stopped
		err = s.db.Close()
	})
	return err
}

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Get implements flow.Store.
func (s *Store) Get(ctx context.Context, key string) (flow.Entry, error) {
	if err := ctx.Err(); err != nil {
		return flow.Entry{}, err
	}
	var ent flow.Entry
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var e entry
		e, found = live(tx, key, s.now())
		if found {
			// Bytes read in a transaction are only valid within it.
			ent = flow.Entry{Value: append([]byte(nil), e.value...), Rev: e.rev}
		}
		return nil
	})
	if err != nil {
		return flow.Entry{}, fmt.Errorf("%w: reading %s: %w", flow.ErrStoreUnavailable, key, err)
	}
	if !found {
		return flow.Entry{}, flow.ErrNotFound
	}
	return ent, nil
}

// Apply implements flow.Store: every condition is checked against the
// database as the committer's transaction sees it, then every op is
// written, in that one transaction.
func (s *Store) Apply(ctx context.Context, ops ...flow.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}

	// A failed condition is this Apply's answer, not a failure of the
	// transaction, which carries other callers' changes too.
	var conflict error
	err := s.update(func(tx *bolt.Tx) error {
		now := s.now()
		conflict = nil
		for _, op := range ops {
			if err := check(tx, op, now); err != nil {
				conflict = err
				return nil
			}
		}
		for _, op := range ops {
			if err := write(tx, op, now); err != nil {
				return fmt.Errorf("writing %s: %w", op.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", flow.ErrStoreUnavailable, err)
	}
	return conflict
}

// check returns why op cannot be applied, if it cannot.
func check(tx *bolt.Tx, op flow.Op, now time.Time) error {
	e, found := live(tx, op.Key, now)
	return flow.CheckOp(op, found, e.rev)
}

// write applies one op whose condition holds.
func write(tx *bolt.Tx, op flow.Op, now time.Time) error {
	switch op.Kind {
	case flow.OpCreate, flow.OpUpdate:
		return putEntry(tx, op.Key, op.Value, op.TTL, now)
	case flow.OpDelete:
		return deleteEntry(tx, op.Key)
	case flow.OpSchedule:
		return setTimer(tx, op.Key, op.Due)
	case flow.OpUnschedule:
		return clearTimer(tx, op.Key)
	}
	return nil
}

var _ flow.Store = (*Store)(nil)
