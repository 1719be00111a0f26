package flow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// A Locker holds the instances sharing a store apart while one of them works
// on something outside the store that cannot take a condition, such as the
// first write of a record of the bot's state.
type Locker interface {
	// Lock waits until it holds the lock called name, or until ctx ends,
	// and returns the lock's release. A lock never released lapses after
	// ttl, so an instance that died holding it holds nobody up for longer.
	Lock(ctx context.Context, name string, ttl time.Duration) (release func(), err error)
}

// A LockUser is a Signal that needs a Locker shared by every instance of the
// handler; New gives it one on the engine's store.
type LockUser interface {
	UseLocker(Locker)
}

// keyLock is the store key prefix of held locks.
const keyLock = "l/"

// How often a waiting Lock tries again: from the first interval, doubling,
// up to the last.
const (
	lockPollFirst = 10 * time.Millisecond
	lockPollLast  = 500 * time.Millisecond
)

// StoreLocker is a Locker on a Store: a lock is a key created with a TTL
// and a random token, and released by deleting it if it still holds that
// token. Lock names become keys through the keyring's MAC, so the store
// sees no identifier a name may carry.
type StoreLocker struct {
	store Store
	keys  *Keyring
	rand  io.Reader
	log   *slog.Logger
}

// NewStoreLocker returns a Locker on store. rand is the source of the
// tokens; nil means crypto/rand. log takes failed releases; nil means none.
func NewStoreLocker(store Store, keys *Keyring, rnd io.Reader, log *slog.Logger) *StoreLocker {
	if rnd == nil {
		rnd = rand.Reader
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreLocker{store: store, keys: keys, rand: rnd, log: log}
}

// Lock implements Locker.
func (l *StoreLocker) Lock(ctx context.Context, name string, ttl time.Duration) (func(), error) {
	key := keyLock + b64(l.keys.MAC("lock", name)[:18])
	token := []byte(randomString(l.rand, 16))

	wait := lockPollFirst
	for {
		err := l.store.Apply(ctx, Create(key, token, ttl))
		if err == nil {
			return func() { l.release(key, token) }, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("taking a lock: %w", err)
		}

		// Another instance holds it: wait for its release or its TTL.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for a lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, lockPollLast)
	}
}

// release deletes the lock's key if it still holds token: a lock that lapsed
// may be another's by now. A release that fails leaves the lock to lapse.
func (l *StoreLocker) release(key string, token []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ent, err := l.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) || (err == nil && string(ent.Value) != string(token)) {
		return
	}
	if err == nil {
		err = l.store.Apply(ctx, Delete(key, ent.Rev))
	}
	if err != nil && !errors.Is(err, ErrConflict) {
		l.log.Warn("releasing a lock failed; it lapses after its TTL", "error", err.Error())
	}
}
