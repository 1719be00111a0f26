package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// The timer queue of the storage store: a key's timer is its file under
// ti/, authoritative; the queue holds an entry per scheduled time under the
// minute it falls in, which Claim walks.

// schedule writes the key's timer and a queue entry for it. Entries never
// go into minutes more than one minute past, which Claim may have left
// behind (see queueSkew).
func (s *storageStore) schedule(ctx context.Context, key string, due time.Time) error {
	n := due.UnixNano()
	if err := s.w.put(ctx, s.tiPath(key), []byte(strconv.FormatInt(n, 10))); err != nil {
		return err
	}
	bucket := max(due.Unix()/60, s.now().Unix()/60-1)
	entry := fmt.Sprintf("%s/%s.%d", s.bucketDir(bucket), escKey(key), n)
	return s.w.put(ctx, entry, nil)
}

// timer reads a key's due time, in Unix nanoseconds; ok is false if the key
// has no timer.
func (s *storageStore) timer(ctx context.Context, key string) (int64, bool, error) {
	b, err := s.st.Load(ctx, s.tiPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: loading timer: %w", flow.ErrStoreUnavailable, err)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil, nil
}

// Claim implements flow.Store: it walks the queue's minutes up to now, and
// for each entry that is still its key's timer and is due, moves the timer
// to now+lease.
func (s *storageStore) Claim(ctx context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	minutes, err := s.dueMinutes(ctx, now)
	if err != nil {
		return nil, err
	}

	// A key claimed without a lease moves to now, which may be a minute
	// still ahead in the walk: it is returned once.
	var keys []string
	seen := map[string]bool{}
	for _, m := range minutes {
		got, err := s.claimBucket(ctx, s.bucketDir(m), now, lease, limit-len(keys))
		if err != nil {
			return keys, err
		}
		for _, k := range got {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if len(keys) >= limit {
			return keys, nil
		}
	}

	// Every minute before now is empty but for what other instances may
	// still add, which goes no further back than their clocks' minute
	// before now.
	s.queue.mu.Lock()
	s.queue.from = now.Unix()/60 - queueSkew
	s.queue.mu.Unlock()
	return keys, nil
}

// The minutes of the queue Claim looks at. A store lists the queue's
// minutes when it first claims and every queueRelist after; in between it
// looks at the minutes from where the last complete claim left off, the
// window of clock skew before it, up to now. Listing the queue is a scan of
// every entry in storages that keep keys flat, which the window spares them.
const (
	queueSkew   = 5 // minutes
	queueRelist = 10 * time.Minute
)

// queueScan is where Claim starts.
type queueScan struct {
	mu     sync.Mutex
	from   int64     // the earliest minute that may hold entries; 0 until listed
	listed time.Time // when the queue's minutes were last listed
}

func (s *storageStore) bucketDir(minute int64) string {
	return fmt.Sprintf("%s/%012d", s.tqDir(), minute)
}

// dueMinutes returns the minutes to claim from, in order, up to now's.
func (s *storageStore) dueMinutes(ctx context.Context, now time.Time) ([]int64, error) {
	last := now.Unix() / 60
	s.queue.mu.Lock()
	from, listed := s.queue.from, s.queue.listed
	s.queue.mu.Unlock()

	if from > 0 && from <= last && !now.Before(listed) && now.Sub(listed) < queueRelist {
		minutes := make([]int64, 0, last-from+1)
		for m := from; m <= last; m++ {
			minutes = append(minutes, m)
		}
		return minutes, nil
	}

	names, err := s.list(ctx, s.tqDir())
	if err != nil {
		return nil, err
	}
	var minutes []int64
	for _, name := range names {
		m, err := strconv.ParseInt(path.Base(name), 10, 64)
		if err == nil && m <= last {
			minutes = append(minutes, m)
		}
	}
	slices.Sort(minutes)

	s.queue.mu.Lock()
	s.queue.from, s.queue.listed = last-queueSkew, now
	if len(minutes) > 0 {
		s.queue.from = min(minutes[0], s.queue.from)
	}
	s.queue.mu.Unlock()
	return minutes, nil
}

func (s *storageStore) claimBucket(ctx context.Context, bucket string, now time.Time,
	lease time.Duration, limit int) ([]string, error) {
	entries, err := s.list(ctx, bucket)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 && path.Base(bucket) < fmt.Sprintf("%012d", now.Unix()/60-queueSkew) {
		_ = s.w.del(ctx, bucket) // an old, empty minute, past any writer's reach
	}

	var keys []string
	for _, entry := range entries {
		if len(keys) >= limit {
			break
		}
		ok, key, err := s.claimEntry(ctx, entry, now, lease)
		if err != nil {
			return keys, err
		}
		if ok {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// claimEntry claims the key of one queue entry if the entry is still the
// key's timer and due; a stale entry is removed.
func (s *storageStore) claimEntry(ctx context.Context, entry string, now time.Time,
	lease time.Duration) (bool, string, error) {
	name := path.Base(entry)
	dot := strings.LastIndexByte(name, '.')
	due, err := strconv.ParseInt(name[dot+1:], 10, 64)
	if dot < 0 || err != nil {
		return false, "", s.w.del(ctx, entry)
	}
	if due > now.UnixNano() {
		return false, "", nil
	}
	key := unescKey(name[:dot])

	unlock, err := s.lock(ctx, []string{key})
	if err != nil {
		return false, "", err
	}
	defer unlock()

	cur, ok, err := s.timer(ctx, key)
	if err != nil {
		return false, "", err
	}
	if ok && cur == due && now.Add(lease).UnixNano() == due {
		return true, key, nil // no lease: the timer and its entry stay as they are
	}
	if ok && cur == due {
		if err := s.schedule(ctx, key, now.Add(lease)); err != nil {
			return false, "", fmt.Errorf("%w: %w", flow.ErrStoreUnavailable, err)
		}
	}
	if err := s.w.del(ctx, entry); err != nil {
		return false, "", err
	}
	if err := s.w.flush(); err != nil {
		return false, "", fmt.Errorf("%w: syncing: %w", flow.ErrStoreUnavailable, err)
	}
	return ok && cur == due, key, nil
}
