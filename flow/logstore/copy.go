package logstore

import (
	"context"
	"io"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

// Dump calls entry for every live value and timer for every timer, in no
// particular order, from one consistent and durable view of the store: what
// moving its contents into another store takes. A zero expiry is none.
func (s *Store) Dump(ctx context.Context,
	entry func(key string, value []byte, expires time.Time) error,
	timer func(key string, due time.Time) error) error {
	c, err := s.durableCopy()
	if err != nil {
		return err
	}
	for _, k := range c.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := entry(k.Key, k.Value, k.Exp); err != nil {
			return err
		}
	}
	for _, t := range c.Timers {
		if err := timer(t.Key, t.Due); err != nil {
			return err
		}
	}
	return nil
}

// Backup writes a snapshot of the store to w while writes go on. A
// directory holding only that file, under a name such as 0.snap, opens as
// the store at the time of the copy. size, if not nil, learns the copy's
// length before it is written, so that a reader can tell a copy cut short.
func (s *Store) Backup(w io.Writer, size func(int64)) (int64, error) {
	c, err := s.durableCopy()
	if err != nil {
		return 0, err
	}
	if size != nil {
		n, _ := writeCopy(io.Discard, c)
		size(n)
	}
	return writeCopy(w, c)
}

// durableCopy copies the state once everything in it is durable.
func (s *Store) durableCopy() (memstore.Copy, error) {
	s.mu.Lock()
	if err := s.refusal(); err != nil {
		s.mu.Unlock()
		return memstore.Copy{}, err
	}
	c := s.state.Copy(s.now(), nil)
	wait := s.unsynced()
	s.mu.Unlock()

	if wait != nil {
		s.kick()
		if err := wait.wait(); err != nil {
			return memstore.Copy{}, err
		}
	}
	return c, nil
}
