package boltstore

import (
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A call is one caller's change, waiting for the committer.
type call struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a write transaction shared with the other changes
// waiting, and returns once that transaction is durable. fn may run more
// than once, if another change of its transaction fails: it must set its
// results afresh each time.
//
// bbolt's own Batch waits a fixed delay for company before it commits; this
// committer starts at once, and batches what arrives during each sync.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	c := &call{fn: fn, done: make(chan error, 1)}
	select {
	case s.calls <- c:
	case <-s.quit:
		return ErrClosed
	}
	return <-c.done
}

// commitLoop takes the waiting changes, as many as have arrived up to
// maxBatch, and commits them together, until the store closes.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	batch := make([]*call, 0, s.maxBatch)
	for {
		select {
		case c := <-s.calls:
			batch = append(batch[:0], c)
		case <-s.quit:
			return
		}
	more:
		for len(batch) < s.maxBatch {
			select {
			case c := <-s.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs the calls in one transaction. A call that fails gets its
// error and leaves the batch, and the others run again without it.
func (s *Store) commit(calls []*call) {
	for len(calls) > 0 {
		failed := -1
		var failure error
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := c.fn(tx); err != nil {
					failed, failure = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		calls[failed].done <- failure
		calls = slices.Delete(calls, failed, failed+1)
	}
}
