package logstore

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

// compactRetry is how long the writer waits to compact again after a
// compaction failed.
const compactRetry = time.Minute

// A compactor runs one compaction at a time beside the writer. Only the
// writer's goroutine touches it, apart from done and wg.
type compactor struct {
	running   bool
	done      chan compaction
	wg        sync.WaitGroup
	retryAt   time.Time
	snapBytes int64 // size of the newest snapshot
}

// A compaction is how one ended.
type compaction struct {
	size int64
	err  error
}

// maybeCompact starts a compaction when the current segment has outgrown
// the snapshot and CompactAfter, and none runs. The writer calls it
// between batches.
func (s *Store) maybeCompact() {
	c := &s.compactor
	select {
	case r := <-c.done:
		// A snapshot in place counts even if removing the files it
		// replaced failed: the next compaction removes them.
		c.running = false
		if r.size > 0 {
			c.snapBytes = r.size
		}
		if r.err != nil {
			s.log.Warn("compacting the flow log failed; it grows until a later try succeeds",
				"directory", s.dir, "error", r.err)
		}
		if r.size == 0 {
			c.retryAt = s.now().Add(compactRetry)
		}
	default:
	}

	if c.running || s.seg.size < max(s.opts.CompactAfter, c.snapBytes) ||
		s.now().Before(c.retryAt) {
		return
	}
	if err := s.startCompaction(); err != nil {
		s.log.Warn("compacting the flow log failed; it grows until a later try succeeds",
			"directory", s.dir, "error", err)
		c.retryAt = s.now().Add(compactRetry)
	}
}

// startCompaction moves the writer to a new segment and writes, in the
// background, a snapshot of the state at the move.
func (s *Store) startCompaction() error {
	next, err := createSegment(s.dir, s.seg.n+1)
	if err != nil {
		return err
	}

	// Between two batches, so every frame before the switch is in the old
	// segment and every frame after it goes to the new one.
	old := s.seg
	s.seg = next
	if err := old.close(); err != nil {
		s.log.Warn("closing a finished log segment failed", "directory", s.dir, "error", err)
	}

	// The copy lets writes in every few thousand entries, so that calls
	// wait for a chunk, not for the whole state. Their frames are in the
	// new segment, which replays on the snapshot: whichever of their
	// changes the copy holds, the replay ends in the state after them.
	// The snapshot waits for the last of those frames to be durable.
	s.mu.Lock()
	state := s.state.Copy(s.now(), func() {
		s.mu.Unlock()
		s.mu.Lock()
	})
	unsynced := s.unsynced()
	s.mu.Unlock()

	c := &s.compactor
	if c.done == nil {
		c.done = make(chan compaction, 1)
	}
	c.running = true
	c.wg.Go(func() {
		size, err := s.writeSnapshot(next.n, state, unsynced)
		c.done <- compaction{size: size, err: err}
	})
	return nil
}

// wait returns once no compaction runs.
func (c *compactor) wait() { c.wg.Wait() }

// writeSnapshot writes state as snapshot n, once unsynced (if not nil) is
// durable, and then removes the files it replaces.
func (s *Store) writeSnapshot(n uint64, state memstore.Copy, unsynced *batch) (int64, error) {
	path := filepath.Join(s.dir, snapshotName(n))
	tmp := path + tmpExt
	size, err := writeFile(tmp, state)
	if err == nil && unsynced != nil {
		err = unsynced.wait()
	}
	if err != nil {
		return 0, errors.Join(err, os.Remove(tmp))
	}

	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	if err := syncDir(s.dir); err != nil {
		return 0, err
	}
	if err := removeBefore(s.dir, n); err != nil {
		return size, fmt.Errorf("removing the files snapshot %d replaces: %w", n, err)
	}
	return size, nil
}

// writeFile writes state to a new file at path and syncs it.
func writeFile(path string, state memstore.Copy) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(&syncingWriter{f: f}, 1<<20)
	size, err := writeCopy(w, state)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return size, nil
}

// syncEvery is how much of a snapshot is written between two syncs.
const syncEvery = 8 << 20

// A syncingWriter syncs the file it writes every syncEvery bytes, so that
// the disk takes a snapshot in small steps: one sync of all of it at the
// end would hold up the log's syncs, and every write waiting on them,
// until the whole snapshot is on the disk.
type syncingWriter struct {
	f        *os.File
	unsynced int
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if w.unsynced += n; err == nil && w.unsynced >= syncEvery {
		w.unsynced, err = 0, datasync(w.f)
	}
	return n, err
}
