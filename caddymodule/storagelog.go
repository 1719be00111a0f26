package caddymodule

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/boltstore"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
)

// On the local file system, the storage store keeps each handler's flows in
// a log, bot_handoff/NAMESPACE/log/ under the storage's directory (see
// flow/logstore): a write is one append, synced with the writes around it,
// where a file per key costs a file creation per key. With shared, it
// keeps a file per key, as in every other storage. Flows move from one
// layout to the other when a process opens a handler's store in the other
// layout; a reload cannot change the layout, as the old configuration
// still serves from the old one until it stops. The flows of the earlier
// database layout, bot_handoff/NAMESPACE/store.db, move into the log too.

const (
	// logDir is the log's directory in a handler's directory.
	logDir = "log"
	// boltFile is the earlier layout's database in a handler's directory.
	boltFile = "store.db"
)

// logLockTimeout is how long a process waits for another to let go of a
// log before it gives up.
var logLockTimeout = 10 * time.Second

var (
	// logs are the process's open logs, by directory: a reload's new
	// configuration takes the one its old configuration holds.
	logs = caddy.NewUsagePool()
	// fileLayouts are the handler directories the process's
	// configurations use with a file per key.
	fileLayouts = caddy.NewUsagePool()
)

// pooledLog is an open log, closed when its last user lets it go.
type pooledLog struct{ *logstore.Store }

func (l pooledLog) Destruct() error { return l.Close() }

// inUse is a pooled directory of the file layout, which holds nothing open.
type inUse struct{}

func (inUse) Destruct() error { return nil }

// openLog returns the log of the handler's directory base, moving into it
// the flows of the other layouts, if there are any.
func (s *StorageStore) openLog(fs *certmagic.FileStorage, base string) (*logstore.Store, error) {
	dir := filepath.Join(fs.Path, filepath.FromSlash(base))
	path := filepath.Join(dir, logDir)
	if n, _ := fileLayouts.References(dir); n > 0 {
		return nil, errors.New("store storage: the running configuration keeps a file per " +
			"key (shared); restart Caddy to move the flows into the log")
	}

	v, _, err := logs.LoadOrNew(path, func() (caddy.Destructor, error) {
		st, err := logstore.Open(path, logstore.Options{
			LockTimeout: logLockTimeout,
			Logger:      s.slog,
		})
		if err != nil {
			return nil, fmt.Errorf("%w (Caddy processes sharing a storage directory need "+
				"store storage { shared }, or store redis)", err)
		}
		err = s.moveBoltInto(dir, st)
		if err == nil {
			err = s.moveFilesInto(fs, base, st)
		}
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		return pooledLog{st}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening the storage store: %w", err)
	}
	s.logs = append(s.logs, path)
	return v.(pooledLog).Store, nil
}

// moveFilesInto moves the flows of the file layout under base into st, and
// then removes the files.
func (s *StorageStore) moveFilesInto(fs *certmagic.FileStorage, base string, st flow.Store) error {
	dir := filepath.Join(fs.Path, filepath.FromSlash(base))
	if !exists(filepath.Join(dir, "kv")) && !exists(filepath.Join(dir, "ti")) {
		return nil
	}
	files := newStorageStore(fs, base, nil)
	defer files.w.close()

	ctx := context.Background()
	n, err := moveFlows(ctx, files.dump, st, time.Now())
	if err != nil {
		return fmt.Errorf("moving the flows of %s into the log: %w", dir, err)
	}
	for _, sub := range []string{"kv", "ti", "tq", "locks", "tmp"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("removing the moved files: %w", err)
		}
	}
	s.logger.Info("moved the storage store's keys from files into its log",
		zap.String("directory", dir), zap.Int("keys", n))
	return nil
}

// moveBoltInto moves the flows of the earlier database layout in dir, if
// there is one, into st (the log, or the files of shared), and then removes
// the database.
func (s *StorageStore) moveBoltInto(dir string, st flow.Store) error {
	path := filepath.Join(dir, boltFile)
	if !exists(path) {
		return nil
	}
	now := time.Now()
	dump := func(ctx context.Context, entry func(string, []byte, time.Time) error,
		timer func(string, time.Time) error) error {
		return boltstore.Dump(ctx, path, time.Second, now, entry, timer)
	}
	n, err := moveFlows(context.Background(), dump, st, now)
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("moving the flows of the earlier database %s: %w", path, err)
	}
	s.logger.Info("moved the storage store's keys out of its earlier database",
		zap.String("directory", dir), zap.Int("keys", n))
	return nil
}

// leaveLog moves the flows of the handler's log, and of the earlier
// database, if it has them, into the file layout of st, and removes them.
func (s *StorageStore) leaveLog(fs *certmagic.FileStorage, st *storageStore) error {
	dir := filepath.Join(fs.Path, filepath.FromSlash(st.base))
	if _, _, err := fileLayouts.LoadOrNew(dir, func() (caddy.Destructor, error) {
		return inUse{}, nil
	}); err != nil {
		return err
	}
	s.layouts = append(s.layouts, dir)

	path := filepath.Join(dir, logDir)
	if n, _ := logs.References(path); n > 0 {
		return errors.New("store storage: the running configuration keeps its flows in a " +
			"log; restart Caddy to move them into a file per key (shared)")
	}
	if err := s.moveBoltInto(dir, st); err != nil {
		return err
	}
	if !exists(path) {
		return nil
	}
	l, err := logstore.Open(path, logstore.Options{LockTimeout: time.Second})
	if err != nil {
		return fmt.Errorf("opening the storage store's log to move its flows: %w", err)
	}
	n, err := moveFlows(context.Background(), l.Dump, st, time.Now())
	if err := errors.Join(err, l.Close()); err != nil {
		return fmt.Errorf("moving the flows of %s into files: %w", path, err)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("removing the moved log: %w", err)
	}
	s.logger.Info("moved the storage store's keys from its log into files",
		zap.String("directory", dir), zap.Int("keys", n))
	return nil
}

// A dumpFunc calls entry for every live value of a store and timer for
// every timer.
type dumpFunc func(ctx context.Context, entry func(key string, value []byte, exp time.Time) error,
	timer func(key string, due time.Time) error) error

// moveWriters is how many writes a move keeps going at once, so that the
// log's group commit syncs many of them together.
const moveWriters = 64

// moveFlows writes what dump lists into to, keeping lifetimes and timers,
// and returns how many values it wrote. A key to already holds is left as
// it is, so a move cut short can run again. A key's value and its timer are
// apart in a store, so they may land in any order.
func moveFlows(ctx context.Context, dump dumpFunc, to flow.Store, now time.Time) (int, error) {
	g, ctx := errgroup.WithContext(ctx)
	ops := make(chan flow.Op)
	var n atomic.Int64
	for range moveWriters {
		g.Go(func() error {
			for op := range ops {
				err := to.Apply(ctx, op)
				if errors.Is(err, flow.ErrConflict) {
					continue
				}
				if err != nil {
					return err
				}
				if op.Kind == flow.OpCreate {
					n.Add(1)
				}
			}
			return nil
		})
	}

	send := func(op flow.Op) error {
		select {
		case ops <- op:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	entry := func(key string, value []byte, exp time.Time) error {
		var ttl time.Duration
		if !exp.IsZero() {
			if ttl = exp.Sub(now); ttl <= 0 {
				return nil
			}
		}
		return send(flow.Create(key, value, ttl))
	}
	timer := func(key string, due time.Time) error { return send(flow.Schedule(key, due)) }
	err := dump(ctx, entry, timer)
	close(ops)

	// A writer's failure is the cause; the dump then only saw its context end.
	if werr := g.Wait(); werr != nil {
		err = werr
	}
	return int(n.Load()), err
}

// dump lists the file layout: the live values under kv/ and the timers
// under ti/.
func (s *storageStore) dump(ctx context.Context, entry func(string, []byte, time.Time) error,
	timer func(string, time.Time) error) error {
	err := s.eachKey(ctx, func(key string) error {
		ent, exp, err := s.load(ctx, key)
		if errors.Is(err, flow.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return entry(key, ent.Value, exp)
	})
	if err != nil {
		return err
	}

	paths, err := s.list(ctx, s.base+"/ti")
	if err != nil {
		return err
	}
	for _, p := range paths {
		key := unescKey(path.Base(p))
		n, ok, err := s.timer(ctx, key)
		if err == nil && ok {
			err = timer(key, time.Unix(0, n))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, iofs.ErrNotExist)
}
