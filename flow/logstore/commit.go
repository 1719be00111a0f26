package logstore

import (
	"fmt"
	"runtime"
	"sync"
)

// A batch is the frames added since the last write began. Its writers wait
// for done; err is then set if the write or its sync failed.
type batch struct {
	n    uint64 // batches are numbered in the order they are written
	buf  []byte
	done chan struct{}
	err  error
}

func newBatch(n uint64) *batch { return &batch{n: n, done: make(chan struct{})} }

// wait returns once the batch is durable, or failed.
func (b *batch) wait() error {
	<-b.done
	return b.err
}

// writer is the state of the goroutine that writes the batches, which only
// it touches, and how the store talks to it.
type writer struct {
	wake      chan struct{} // a batch has something to write
	quit      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error

	seg       *segment
	spare     []byte // the buffer of the last batch written, for reuse
	compactor compactor
}

func newWriter() writer {
	return writer{
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// kick tells the writer a batch has something to write.
func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maxSpare bounds the buffer kept for the next batch, so that one large
// batch does not hold its memory for good.
const maxSpare = 4 << 20

// unsynced returns the last batch that is not yet durable, if any. s.mu is
// held.
func (s *Store) unsynced() *batch {
	if len(s.pending.buf) > 0 {
		return s.pending
	}
	return s.flushing
}

// batch returns the batch numbered n that is not yet durable: the one
// collecting or the one being written. s.mu is held.
func (s *Store) batch(n uint64) *batch {
	if n == s.pending.n {
		return s.pending
	}
	return s.flushing
}

// writeLoop writes the batches as they fill, and between them compacts the
// log, until the store closes; then it writes what is left and stops.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
			s.gather()
			s.flush()
			s.maybeCompact()
		case <-s.quit:
			s.flush()
			s.compactor.wait()
			return
		}
	}
}

// maxYields bounds the yields of gather.
const maxYields = 8

// gather lets the goroutines that are ready to run add their frames before
// the batch is written, yielding for as long as the batch grows, a few
// times at most. On one CPU a batch then holds every write on its way, not
// only the first, and the syncs are fewer: Go keeps a CPU idle for a while
// at the start of each, until it hands the CPU to another thread.
func (s *Store) gather() {
	last := -1
	for range maxYields {
		s.mu.Lock()
		n := len(s.pending.buf)
		s.mu.Unlock()
		if n == last {
			return
		}
		last = n
		runtime.Gosched()
	}
}

// flush writes the collecting batch, if it holds anything, with one write
// and one sync, while a new batch collects the writes that come meanwhile.
func (s *Store) flush() {
	s.mu.Lock()
	b := s.pending
	if len(b.buf) == 0 {
		s.mu.Unlock()
		return
	}
	s.flushing = b
	s.pending = newBatch(b.n + 1)
	s.pending.buf = s.spare[:0]
	err := s.failure
	s.mu.Unlock()

	if err == nil {
		if err = s.seg.append(b.buf); err != nil {
			err = fmt.Errorf("logstore: writing %s: %w; the store takes no more calls "+
				"until it is opened again", segmentName(s.seg.n), err)
		}
	}

	s.mu.Lock()
	s.flushing = nil
	if err == nil {
		s.synced = b.n
	} else if s.failure == nil {
		s.failure = err
	}
	if cap(b.buf) <= maxSpare {
		s.spare = b.buf
	}
	s.mu.Unlock()

	b.buf, b.err = nil, err
	close(b.done)
}
