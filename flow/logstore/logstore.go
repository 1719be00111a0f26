// Package logstore is a flow.Store on the local disk of one process: the
// whole state in memory, as the memory store keeps it, and every write
// appended to a log on disk before it is acknowledged. Opening the store
// replays the log, so flows survive restarts and crashes.
//
// Writes are group-committed: an Apply or Claim changes the state in
// memory, adds its frame to the batch being collected, and waits until a
// sync covers that batch. One goroutine writes and syncs the batches, each
// with one write and one fdatasync, so the writes that arrive during one
// sync share the next. A read waits likewise when the value it finds is
// not yet durable, so nothing a crash could take back is ever returned.
//
// The log is compacted in the background: once the segment written since
// the last snapshot outgrows it (and CompactAfter), the writer starts a new
// segment and a snapshot of the state is written beside it; the older files
// go when the snapshot is in place. The state is copied a chunk at a time,
// the calls let in between, and the new segment replays on the snapshot to
// the state after whatever changed meanwhile.
//
// One process at a time opens a store: it holds a lock file in the
// directory. The processes of a cluster share a Redis store instead.
package logstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

var (
	// ErrClosed is returned by calls on a closed store.
	ErrClosed = errors.New("logstore: store closed")
	// ErrLocked is returned by Open when another process holds the store.
	ErrLocked = errors.New("logstore: another process holds the store")
)

// lockRetry is how often Open tries again for a lock another process holds.
const lockRetry = 50 * time.Millisecond

// Options tune Open.
type Options struct {
	// Now is the store's clock. Default: time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to let go of
	// the store. Default: 10s.
	LockTimeout time.Duration
	// CompactAfter is how large the segments written since the last
	// snapshot grow, at least, before the log is compacted; beyond it, they
	// may grow as large as the snapshot. Default: 64 MiB.
	CompactAfter int64
	// Logger hears of compactions that failed and of a torn frame cut off
	// the log's end at Open. Default: discard.
	Logger *slog.Logger
}

// Store is a flow.Store kept in memory and in a log. It is safe for
// concurrent use.
type Store struct {
	dir  string
	now  func() time.Time
	log  *slog.Logger
	opts Options
	lock *os.File

	mu      sync.Mutex
	state   *memstore.State
	pending *batch // collects frames
	// flushing is the batch being written and synced; nil when none.
	flushing *batch
	// synced is the number of the last batch that is durable.
	synced uint64
	// failure is set when a write or sync failed: the state in memory is
	// then ahead of the disk, and every call returns it.
	failure error
	closed  bool

	writer
}

// Open opens the store in directory dir, creating it if needed, and
// replays its log.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 10 * time.Second
	}
	if opts.CompactAfter <= 0 {
		opts.CompactAfter = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockFile(filepath.Join(dir, lockName), opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	s := &Store{
		dir: dir, now: opts.Now, log: opts.Logger, opts: opts, lock: lock,
		state:   memstore.NewState(),
		pending: newBatch(1),
		writer:  newWriter(),
	}
	if err := s.load(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	go s.writeLoop()
	return s, nil
}

// Close writes what is pending, stops the writer and lets go of the lock.
// Calls after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()

		close(s.quit)
		<-s.stopped
		s.closeErr = errors.Join(s.seg.close(), s.lock.Close())
	})
	return s.closeErr
}

// refusal is why the store takes no calls, if it takes none. s.mu is held.
func (s *Store) refusal() error {
	if s.closed {
		return ErrClosed
	}
	return s.failure
}

// Get implements flow.Store.
func (s *Store) Get(_ context.Context, key string) (flow.Entry, error) {
	s.mu.Lock()
	if err := s.refusal(); err != nil {
		s.mu.Unlock()
		return flow.Entry{}, err
	}
	it, ok := s.state.Live(key, s.now())
	var wait *batch
	if ok && it.Tag > s.synced {
		wait = s.batch(it.Tag)
	}
	s.mu.Unlock()

	if !ok {
		return flow.Entry{}, flow.ErrNotFound
	}
	if wait != nil {
		if err := wait.wait(); err != nil {
			return flow.Entry{}, err
		}
	}
	return flow.Entry{Value: it.Value, Rev: it.Rev}, nil
}

// Apply implements flow.Store. It returns once the change is durable.
func (s *Store) Apply(_ context.Context, ops ...flow.Op) error {
	s.mu.Lock()
	if err := s.refusal(); err != nil {
		s.mu.Unlock()
		return err
	}
	now := s.now()
	if err := s.state.Check(ops, now); err != nil {
		s.mu.Unlock()
		return err
	}
	s.state.Sweep(now)

	b := s.pending
	buf, start := beginFrame(b.buf)
	for _, op := range ops {
		buf = appendOp(buf, op, s.state.Apply(op, now, b.n))
	}
	b.buf = endFrame(buf, start, s.state.Rev())
	s.mu.Unlock()

	s.kick()
	return b.wait()
}

// Claim implements flow.Store. It returns once the leases are durable.
func (s *Store) Claim(_ context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	s.mu.Lock()
	if err := s.refusal(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	keys := s.state.Claim(now, lease, limit)
	if len(keys) == 0 {
		s.mu.Unlock()
		return nil, nil
	}

	b := s.pending
	buf, start := beginFrame(b.buf)
	for _, k := range keys {
		buf = appendTimer(buf, k, now.Add(lease))
	}
	b.buf = endFrame(buf, start, s.state.Rev())
	s.mu.Unlock()

	s.kick()
	return keys, b.wait()
}

// Timers implements flow.Store.
func (s *Store) Timers(_ context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refusal(); err != nil {
		return nil, 0, err
	}
	out, total := s.state.Timers(prefix, limit)
	return out, total, nil
}

// Sweep drops from memory the values whose lifetimes have ended, which
// writes drop too as they come; it is for a store that sees no writes.
// The log forgets them at its next compaction.
func (s *Store) Sweep(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refusal(); err != nil {
		return 0, err
	}
	return s.state.Sweep(s.now()), nil
}

var _ flow.Store = (*Store)(nil)
