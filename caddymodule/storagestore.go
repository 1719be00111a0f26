package caddymodule

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// storageStore is a flow.Store on Caddy's storage (certmagic.Storage): the
// file system unless the operator chose another. Each key is a storage
// entry; writes to a key happen under a cross-process lock for it, so
// instances sharing the storage stay consistent. Writes go through a
// storageWriter: the storage itself, or for the local file system a path
// that syncs once per Apply, shared by concurrent Applies.
//
// Layout under the base path:
//
//	kv/KEY                  value: 8-byte revision, 8-byte expiry, bytes
//	ti/ESCKEY               the key's timer: its due time, authoritative
//	tq/MINUTE/ESCKEY.NANOS  a queue entry per scheduled time; stale once
//	                        the timer moved, and dropped when found so
type storageStore struct {
	st   certmagic.Storage
	w    storageWriter
	base string
	now  func() time.Time

	stripes [64]sync.Mutex
	queue   queueScan
}

func newStorageStore(st certmagic.Storage, base string, now func() time.Time) *storageStore {
	if now == nil {
		now = time.Now
	}
	return &storageStore{st: st, w: storageWriterFor(st, base), base: base, now: now}
}

// Sizes of the value header.
const headerLen = 16

func (s *storageStore) kvPath(key string) string { return s.base + "/kv/" + key }
func (s *storageStore) tiPath(key string) string { return s.base + "/ti/" + escKey(key) }
func (s *storageStore) tqDir() string            { return s.base + "/tq" }

// escKey makes a key one path segment.
func escKey(key string) string   { return strings.ReplaceAll(key, "/", "~") }
func unescKey(esc string) string { return strings.ReplaceAll(esc, "~", "/") }

// Get implements flow.Store.
func (s *storageStore) Get(ctx context.Context, key string) (flow.Entry, error) {
	ent, _, err := s.load(ctx, key)
	return ent, err
}

// load reads a live value and its expiry.
func (s *storageStore) load(ctx context.Context, key string) (flow.Entry, time.Time, error) {
	b, err := s.st.Load(ctx, s.kvPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return flow.Entry{}, time.Time{}, flow.ErrNotFound
	}
	if err != nil {
		err = fmt.Errorf("%w: loading %s: %w", flow.ErrStoreUnavailable, key, err)
		return flow.Entry{}, time.Time{}, err
	}
	if len(b) < headerLen {
		return flow.Entry{}, time.Time{}, fmt.Errorf("stored value of %s is truncated", key)
	}

	rev := binary.BigEndian.Uint64(b[:8])
	var exp time.Time
	if n := int64(binary.BigEndian.Uint64(b[8:16])); n != 0 {
		exp = time.Unix(0, n)
		if !s.now().Before(exp) {
			return flow.Entry{}, time.Time{}, flow.ErrNotFound
		}
	}
	return flow.Entry{Value: b[headerLen:], Rev: rev}, exp, nil
}

// Apply implements flow.Store: it locks every key the ops touch, checks every
// condition, then writes.
func (s *storageStore) Apply(ctx context.Context, ops ...flow.Op) error {
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		keys = append(keys, op.Key)
	}
	unlock, err := s.lock(ctx, keys)
	if err != nil {
		return err
	}
	defer unlock()

	for _, op := range ops {
		if err := s.check(ctx, op); err != nil {
			return err
		}
	}
	for _, op := range ops {
		if err := s.write(ctx, op); err != nil {
			return fmt.Errorf("%w: %w", flow.ErrStoreUnavailable, err)
		}
	}
	if err := s.w.flush(); err != nil {
		return fmt.Errorf("%w: syncing: %w", flow.ErrStoreUnavailable, err)
	}
	return nil
}

func (s *storageStore) check(ctx context.Context, op flow.Op) error {
	if op.Kind == flow.OpSchedule || op.Kind == flow.OpUnschedule ||
		(op.Kind == flow.OpDelete && op.Rev == 0) {
		return nil
	}
	ent, _, err := s.load(ctx, op.Key)
	if err != nil && !errors.Is(err, flow.ErrNotFound) {
		return err
	}
	return flow.CheckOp(op, err == nil, ent.Rev)
}

func (s *storageStore) write(ctx context.Context, op flow.Op) error {
	switch op.Kind {
	case flow.OpCreate, flow.OpUpdate:
		b := make([]byte, headerLen+len(op.Value))
		binary.BigEndian.PutUint64(b[:8], rand.Uint64()|1)
		if op.TTL > 0 {
			binary.BigEndian.PutUint64(b[8:16], uint64(s.now().Add(op.TTL).UnixNano()))
		}
		copy(b[headerLen:], op.Value)
		return s.w.put(ctx, s.kvPath(op.Key), b)
	case flow.OpDelete:
		return s.w.del(ctx, s.kvPath(op.Key))
	case flow.OpSchedule:
		return s.schedule(ctx, op.Key, op.Due)
	case flow.OpUnschedule:
		return s.w.del(ctx, s.tiPath(op.Key))
	}
	return nil
}

// Timers implements flow.Store by reading every timer; it serves health
// checks and the operator, not the hot path.
func (s *storageStore) Timers(ctx context.Context, prefix string, limit int) ([]flow.Timer,
	int, error) {
	paths, err := s.list(ctx, s.base+"/ti")
	if err != nil {
		return nil, 0, err
	}
	var out []flow.Timer
	for _, p := range paths {
		key := unescKey(path.Base(p))
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		n, ok, err := s.timer(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			out = append(out, flow.Timer{Key: key, Due: time.Unix(0, n)})
		}
	}
	flow.SortTimers(out)
	return out[:min(limit, len(out))], len(out), nil
}

// list returns the entries of a directory, none if it does not exist.
func (s *storageStore) list(ctx context.Context, dir string) ([]string, error) {
	out, err := s.w.list(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %w", flow.ErrStoreUnavailable, dir, err)
	}
	return out, nil
}

// lock takes the in-process stripe and the cross-process lock of every key,
// in order, and returns the function that releases them.
func (s *storageStore) lock(ctx context.Context, keys []string) (func(), error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)

	stripes := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		stripes = append(stripes, int(h.Sum32()%uint32(len(s.stripes))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	unlockStripes := func() {
		for _, i := range stripes {
			s.stripes[i].Unlock()
		}
	}

	unlock, err := s.w.lock(ctx, keys, stripes)
	if err != nil {
		unlockStripes()
		return nil, fmt.Errorf("%w: %w", flow.ErrStoreUnavailable, err)
	}
	return func() { unlock(); unlockStripes() }, nil
}

// sweep removes values whose TTL passed, so the storage follows the number
// of live flows. Reads already treat them as absent.
func (s *storageStore) sweep(ctx context.Context) error {
	return s.eachKey(ctx, func(key string) error {
		if _, _, err := s.load(ctx, key); errors.Is(err, flow.ErrNotFound) {
			s.deleteExpired(ctx, key)
		}
		return nil
	})
}

// eachKey calls fn with every key that has a value file under kv/, walked
// to every depth, as keys hold slashes.
func (s *storageStore) eachKey(ctx context.Context, fn func(key string) error) error {
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := s.list(ctx, dir)
		if err != nil {
			return err
		}
		for _, p := range entries {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			info, err := s.st.Stat(ctx, p)
			if err != nil {
				continue
			}
			if !info.IsTerminal {
				err = walk(p)
			} else {
				err = fn(strings.TrimPrefix(p, s.base+"/kv/"))
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return walk(s.base + "/kv")
}

// deleteExpired removes a key under its lock if it is still expired.
func (s *storageStore) deleteExpired(ctx context.Context, key string) {
	unlock, err := s.lock(ctx, []string{key})
	if err != nil {
		return
	}
	defer unlock()
	if _, _, err := s.load(ctx, key); errors.Is(err, flow.ErrNotFound) {
		_ = s.w.del(ctx, s.kvPath(key))
	}
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

var _ flow.Store = (*storageStore)(nil)
