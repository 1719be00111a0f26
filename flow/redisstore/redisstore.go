// Package redisstore is a flow.Store in Redis, for several handler
// instances that serve one set of flows: a standalone server, a server
// watched by Sentinel, or a Redis Cluster, through any go-redis
// UniversalClient.
//
// Get is one HMGET; Apply, Claim and Timers are each one Lua script, so each
// method is one round trip and atomic across instances. Two take more,
// once: Claim, the first time it meets a kind of key it has not written,
// and Timers, on a store written by a version that kept no timers by kind.
// A store may also wait for replicas to acknowledge each write
// (Config.WaitReplicas): WAIT then follows the script, in the same round
// trip. Values carry native lifetimes (PEXPIRE), so nothing needs
// sweeping. Every key of a store carries its namespace as a hash tag: in a
// cluster they live in one slot, which lets one script touch them all.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// DefaultPrefix starts every key unless Config says otherwise.
const DefaultPrefix = "bothandoff:"

// expiryGrace is how long Redis keeps a value past its lifetime. The
// lifetime is decided by the store's clock, which reads treat as the
// truth; Redis only cleans up, by its own clock, and must never do so
// early when the clocks of instances and of Redis run a little apart.
const expiryGrace = time.Minute

// Config configures a Store.
type Config struct {
	// Prefix starts every key, to keep them apart from other users of the
	// same Redis. Default: DefaultPrefix.
	Prefix string
	// Namespace keeps the keys of one handler apart from those of other
	// handlers sharing the Redis and the prefix. Required.
	Namespace string
	// Now is the clock that decides lifetimes and due times. Default:
	// time.Now.
	Now func() time.Time

	// WaitReplicas is how many replicas must acknowledge each write
	// before Apply and Claim return, so that a failover does not lose a
	// step the master acknowledged. It costs a wait for the replicas on
	// every write, though no extra round trip. The client must be a
	// *redis.Client (standalone or Sentinel) or a *redis.ClusterClient.
	// Default: 0, do not wait.
	WaitReplicas int
	// WaitTimeout bounds how long a write waits for its replicas; it must
	// be shorter than the client's ReadTimeout. Default: 1s.
	WaitTimeout time.Duration
}

// DefaultWaitTimeout bounds the wait for replicas unless Config says
// otherwise.
const DefaultWaitTimeout = time.Second

// Store is a flow.Store in Redis. It is safe for concurrent use; the client
// stays the caller's to close.
type Store struct {
	c   redis.UniversalClient
	now func() time.Time

	// base is the prefix and hash tag every key starts with.
	base    string
	counter string // the revision counter
	byDue   string // timers by due time
	byKey   string // timers by key
	layout  string // the layout marker: whether the sets of kinds are filled

	// kinds are the kinds of key this store has seen, sorted: Claim and
	// the filling of the sets of kinds pass their sets to their scripts.
	mu    sync.Mutex
	kinds []string

	// waitReplicas and waitTimeout are Config's WaitReplicas and
	// WaitTimeout, the timeout in whole milliseconds.
	waitReplicas int
	waitTimeout  time.Duration
	// sent holds the hashes of the scripts this store has sent by their
	// source, when it waits for replicas.
	sent sync.Map

	// tokens name Apply calls: a per-store random part and a sequence.
	// They need to be unique, not secret.
	tokenBase string
	tokenSeq  atomic.Uint64
}

// New returns a store on client. It does not connect: the client connects
// on first use, and reconnects after Redis comes back.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("redis store: a namespace is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	wait, err := waitConfig(client, cfg)
	if err != nil {
		return nil, err
	}

	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("redis store: making token base: %w", err)
	}
	base := cfg.Prefix + "{" + cfg.Namespace + "}:"
	return &Store{
		c: client, now: cfg.Now, base: base,
		counter: base + "rev", byDue: base + "due", byKey: base + "keys", layout: base + "layout",
		waitReplicas: cfg.WaitReplicas, waitTimeout: wait,
		tokenBase: base64.RawURLEncoding.EncodeToString(nonce[:]),
	}, nil
}

// waitConfig checks the wait for replicas of cfg and returns its timeout,
// rounded up to whole milliseconds: WAIT with 0 would wait for ever.
func waitConfig(client redis.UniversalClient, cfg Config) (time.Duration, error) {
	switch {
	case cfg.WaitReplicas < 0 || cfg.WaitTimeout < 0:
		return 0, errors.New("redis store: WaitReplicas and WaitTimeout must not be negative")
	case cfg.WaitReplicas == 0:
		return 0, nil
	}
	switch client.(type) {
	case *redis.Client, *redis.ClusterClient:
	default:
		return 0, fmt.Errorf("redis store: waiting for replicas needs a *redis.Client "+
			"or a *redis.ClusterClient, not %T", client)
	}

	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	return time.Duration(millis(cfg.WaitTimeout)) * time.Millisecond, nil
}

// valueKey is the Redis key holding a store key's value.
func (s *Store) valueKey(key string) string { return s.base + "v:" + key }

// Get implements flow.Store.
func (s *Store) Get(ctx context.Context, key string) (flow.Entry, error) {
	f, err := s.c.HMGet(ctx, s.valueKey(key), "v", "r", "e").Result()
	if err != nil {
		return flow.Entry{}, unavailable("reading "+key, err)
	}

	v, ok := f[0].(string)
	if !ok {
		return flow.Entry{}, flow.ErrNotFound
	}
	if e, ok := f[2].(string); ok && !s.now().Before(time.UnixMilli(parseInt(e))) {
		return flow.Entry{}, flow.ErrNotFound
	}
	r, _ := f[1].(string)
	rev, err := strconv.ParseUint(r, 10, 64)
	if err != nil || rev == 0 {
		return flow.Entry{}, fmt.Errorf("redis store: revision %q of %s is malformed", r, key)
	}
	return flow.Entry{Value: []byte(v), Rev: rev}, nil
}

// opCodes are the kinds of op as applyScript names them.
var opCodes = map[flow.OpKind]string{
	flow.OpCreate: "C", flow.OpUpdate: "U", flow.OpDelete: "D",
	flow.OpSchedule: "S", flow.OpUnschedule: "X",
}

// Apply implements flow.Store in one script.
//
// With WaitReplicas, the script is followed by WAIT in the same round
// trip, and Apply fails with flow.ErrStoreUnavailable when fewer replicas
// than that acknowledged the write within WaitTimeout. The write stands
// all the same: it is on the master, and may yet reach the replicas.
// Nothing is written twice when the call is repeated: a retry of the
// client sends the same token, and the script, finding its own write,
// does nothing more; a step the engine takes again reads the new
// revision, or conflicts with it, since every op that writes a value is
// conditional on what the step read, and deletes and timers come out the
// same done twice.
func (s *Store) Apply(ctx context.Context, ops ...flow.Op) error {
	if len(ops) == 0 {
		return nil
	}
	keys, args, err := s.applyArgs(s.token(), ops)
	if err != nil {
		return err
	}

	res, wait := s.run(ctx, applyScript, keys, args...)
	failed, err := res.Int()
	if err != nil {
		return unavailable("applying ops", err)
	}
	if failed > 0 && failed <= len(ops) {
		op := ops[failed-1]
		return fmt.Errorf("%s %q: %w", verbs[op.Kind], op.Key, flow.ErrConflict)
	}
	return s.replicated("applying ops", wait)
}

// applyArgs returns the KEYS and ARGV of applyScript for ops, and learns
// the kinds of the keys they schedule and unschedule.
func (s *Store) applyArgs(token string, ops []flow.Op) ([]string, []any, error) {
	keys := make([]string, 0, 4+len(ops))
	keys = append(keys, s.counter, s.byDue, s.byKey)
	args := make([]any, 0, 3+7*len(ops))
	args = append(args, s.now().UnixMilli(), token, millis(expiryGrace))

	var kinds []string
	for _, op := range ops {
		code, ok := opCodes[op.Kind]
		if !ok {
			return nil, nil, fmt.Errorf("redis store: unknown op kind %d", op.Kind)
		}
		set := 0
		if code == "S" || code == "X" {
			set, kinds = kindSet(kinds, op.Key, 3+len(ops))
		}
		keys = append(keys, s.valueKey(op.Key))
		args = append(args, code, op.Key, strconv.FormatUint(op.Rev, 10),
			millis(op.TTL), op.Due.UnixMilli(), op.Value, set)
	}

	// The sets of kinds follow the values.
	for _, kind := range kinds {
		keys = append(keys, s.kindKey(kind))
	}
	s.learn(kinds)
	return keys, args, nil
}

// kindSet returns the index in KEYS, which counts from 1, of the timers of
// key's kind, when the sets of kinds follow the first n keys in the order
// of kinds, and kinds with the key's added if new. It returns 0 for a key
// without a kind.
func kindSet(kinds []string, key string, n int) (int, []string) {
	kind := kindOf(key)
	if kind == "" {
		return 0, kinds
	}
	i := slices.Index(kinds, kind)
	if i < 0 {
		i, kinds = len(kinds), append(kinds, kind)
	}
	return n + i + 1, kinds
}

// verbs describe an op in a conflict's message.
var verbs = map[flow.OpKind]string{
	flow.OpCreate: "creating", flow.OpUpdate: "updating", flow.OpDelete: "deleting",
}

// token returns a name for one Apply call, unique across stores and time,
// that lets a call the client retries recognise its own earlier success.
func (s *Store) token() string {
	return s.tokenBase + strconv.FormatUint(s.tokenSeq.Add(1), 36)
}

// millis returns d in whole milliseconds, rounded up so that a lifetime is
// never shortened.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// parseInt reads a number Redis formatted: an integer, or a float for a
// sorted set's score.
func parseInt(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f)
}

// unavailable wraps a failed call to Redis: the engine answers users with
// a page asking them to try again, and the bot API with 503.
func unavailable(doing string, err error) error {
	return fmt.Errorf("%w: %s: %w", flow.ErrStoreUnavailable, doing, err)
}

var _ flow.Store = (*Store)(nil)
