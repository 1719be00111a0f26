package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// run runs script, and when the store waits for replicas, WAIT right
// behind it, in one round trip on one connection. It returns the answers
// of both; that of WAIT is nil when the store does not wait.
//
// WAIT must share the script's connection: it waits for what the master
// had written when the connection's previous command ran, so on another
// connection of the pool, idle since before the script, it might not wait
// for the script's write. In a cluster, both go to the master of the slot
// that holds the store's keys.
func (s *Store) run(ctx context.Context, script *redis.Script, keys []string,
	args ...any) (*redis.Cmd, *redis.IntCmd) {
	if s.waitReplicas == 0 {
		return script.Run(ctx, s.c, keys, args...), nil
	}
	node, err := s.writer(ctx)
	if err != nil {
		res := redis.NewCmd(ctx)
		res.SetErr(err)
		return res, nil
	}

	// A script's first run from this store sends its source: EVALSHA would
	// miss the cache of a master that never ran it, and the WAIT behind it
	// would then wait out its timeout for a write that did not happen.
	eval := script.EvalSha
	if _, ok := s.sent.Load(script.Hash()); !ok {
		eval = script.Eval
	}
	res, wait := s.runAndWait(ctx, node, eval, keys, args)
	if redis.HasErrorPrefix(res.Err(), "NOSCRIPT") {
		res, wait = s.runAndWait(ctx, node, script.Eval, keys, args)
	}
	if res.Err() == nil {
		s.sent.Store(script.Hash(), struct{}{})
	}

	// A cluster client learns of moved slots and new masters from its own
	// commands; these went to the node directly, so tell it.
	if cc, ok := s.c.(*redis.ClusterClient); ok && res.Err() != nil {
		cc.ReloadState(ctx)
	}
	return res, wait
}

// evalFunc is Script.EvalSha or Script.Eval.
type evalFunc func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd

// runAndWait sends the script and WAIT to node in one pipeline.
func (s *Store) runAndWait(ctx context.Context, node redis.UniversalClient, eval evalFunc,
	keys []string, args []any) (*redis.Cmd, *redis.IntCmd) {
	var res *redis.Cmd
	wait := redis.NewIntCmd(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
	// The commands carry their own errors.
	_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		res = eval(ctx, p, keys, args...)
		return p.Process(ctx, wait)
	})
	return res, wait
}

// writer returns the client that reaches the master holding the store's
// keys: the store's own, or in a cluster the client of that master.
func (s *Store) writer(ctx context.Context) (redis.UniversalClient, error) {
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return s.c, nil
	}
	node, err := cc.MasterForKey(ctx, s.counter)
	if err != nil {
		return nil, fmt.Errorf("finding the master of the store's slot: %w", err)
	}
	return node, nil
}

// replicated returns an error when the store waits for replicas and fewer
// than it wants acknowledged a write, by the answer of WAIT. The write
// itself stands.
func (s *Store) replicated(doing string, wait *redis.IntCmd) error {
	if wait == nil {
		return nil
	}
	acked, err := wait.Result()
	if err != nil {
		return unavailable(doing+": waiting for replicas", err)
	}
	if acked >= int64(s.waitReplicas) {
		return nil
	}
	return fmt.Errorf("%w: %s: %d of %d replicas acknowledged the write within %v",
		flow.ErrStoreUnavailable, doing, acked, s.waitReplicas, s.waitTimeout)
}
