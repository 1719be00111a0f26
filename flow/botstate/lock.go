package botstate

import (
	"context"
	"sync"
)

// recordLocks lets one delivery at a time work on a record, within this
// process. The outbox delivers several events at once, and two of them may
// be for one record: on a record never written, whose eTag "*" matches
// anything, both writes would pass and the later would undo the earlier,
// however new. Instances sharing a store are held apart by a flow.Locker
// instead (see Signal.UseLocker).
type recordLocks struct {
	mu    sync.Mutex
	locks map[string]*recordLock
}

type recordLock struct {
	held  chan struct{}
	users int
}

// lock waits for the record at key, or for ctx to end, and returns the
// function that releases it.
func (l *recordLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*recordLock{}
	}
	rl := l.locks[key]
	if rl == nil {
		rl = &recordLock{held: make(chan struct{}, 1)}
		l.locks[key] = rl
	}
	rl.users++
	l.mu.Unlock()

	select {
	case rl.held <- struct{}{}:
		return func() { <-rl.held; l.done(key, rl) }, nil
	case <-ctx.Done():
		l.done(key, rl)
		return nil, ctx.Err()
	}
}

// done forgets the lock once no delivery holds or awaits it.
func (l *recordLocks) done(key string, rl *recordLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rl.users--; rl.users == 0 {
		delete(l.locks, key)
	}
}
