package logstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

// load replays the newest snapshot and the segments after it, cuts a torn
// frame off the last segment, removes the files the snapshot replaced, and
// opens the last segment for the writer.
func (s *Store) load() error {
	l, err := list(s.dir)
	if err != nil {
		return err
	}
	now := s.now()

	var base uint64
	if len(l.snapshots) > 0 {
		snap := l.snapshots[len(l.snapshots)-1]
		size, err := s.replay(snap.name, now)
		if err != nil {
			return fmt.Errorf("reading %s: %w", snap.name, err)
		}
		base, s.compactor.snapBytes = snap.n, size
	}

	var last *file
	var size int64
	torn := false
	for _, f := range l.segments {
		if f.n < base {
			continue
		}
		if torn {
			return fmt.Errorf("reading %s: %w before the log's end", last.name, errTorn)
		}
		last = &f
		size, err = s.replay(f.name, now)
		if errors.Is(err, errTorn) {
			torn = true
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", f.name, err)
		}
	}

	// A crash while writing leaves a torn frame at the end of the last
	// segment, which the writer cuts off before it appends.
	if torn {
		s.log.Warn("cutting a torn frame off the end of the flow log, as a crash while "+
			"writing leaves it", "segment", filepath.Join(s.dir, last.name),
			"offset", size)
	}
	if err := removeBefore(s.dir, base); err != nil {
		return err
	}
	return s.openLast(base, last, size)
}

// openLast opens segment last, whose first size bytes are intact, for the
// writer; or a new segment after snapshot base if there is none.
func (s *Store) openLast(base uint64, last *file, size int64) error {
	var err error
	switch {
	case last == nil:
		s.seg, err = createSegment(s.dir, max(base, 1))
	case size < int64(len(magic)):
		// Created, but its magic never reached the disk.
		if err := os.Remove(filepath.Join(s.dir, last.name)); err != nil {
			return err
		}
		s.seg, err = createSegment(s.dir, last.n)
	default:
		s.seg, err = openSegment(s.dir, *last, size)
	}
	return err
}

// replay applies the frames of the file name to the state, as of now, and
// returns how many of its bytes are intact.
func (s *Store) replay(name string, now time.Time) (int64, error) {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return readFrames(f, func(p []byte) error {
		return decodeFrame(p, func(r record) error {
			s.restore(r, now)
			return nil
		})
	})
}

// restore applies one record to the state. A value whose lifetime ended
// by now is dropped rather than loaded.
func (s *Store) restore(r record, now time.Time) {
	switch r.kind {
	case recSet:
		exp := fromUnixNano(r.exp)
		if !exp.IsZero() && !now.Before(exp) {
			s.state.Delete(r.key)
			s.state.SetRev(r.rev)
			return
		}
		s.state.Put(r.key, memstore.Item{Value: r.value, Rev: r.rev, Exp: exp})
	case recDelete:
		s.state.Delete(r.key)
	case recTimer:
		s.state.SetTimer(r.key, time.Unix(0, r.exp))
	case recUntimer:
		s.state.ClearTimer(r.key)
	case recRev:
		s.state.SetRev(r.rev)
	}
}
