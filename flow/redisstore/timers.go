package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// layoutVersion marks, in the layout marker, that the sets of kinds hold
// every timer of their kind.
const layoutVersion = "2"

// fillBatch is how many timers one run of fillScript reads: it bounds how
// long the script holds Redis.
const fillBatch = 1000

// claimRuns bounds the runs of claimScript in one Claim. Each run but the
// last meets kinds the store had not seen; the engine has a handful.
const claimRuns = 3

// kindOf returns the kind of key, its text up to and including its first
// "/", or "" when it has none.
func kindOf(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return key[:i+1]
}

// kindKey is the Redis key of the timers of kind, by due time.
func (s *Store) kindKey(kind string) string { return s.byDue + ":" + kind }

// learn adds kinds to those the store passes to claimScript and fillScript.
func (s *Store) learn(kinds []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kind := range kinds {
		if i, found := slices.BinarySearch(s.kinds, kind); !found {
			s.kinds = slices.Insert(s.kinds, i, kind)
		}
	}
}

// kindArgs returns the sets of the kinds the store has seen, to follow
// fixed KEYS, and the kinds themselves, to follow fixed ARGV.
func (s *Store) kindArgs(keys []string, args []any) ([]string, []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kind := range s.kinds {
		keys, args = append(keys, s.kindKey(kind)), append(args, kind)
	}
	return keys, args
}

// Claim implements flow.Store in one script. If the answer is lost and the
// client retries, the keys of the first attempt wait for their lease.
//
// A due timer of a kind the store has not seen yet, which another instance
// scheduled, costs one more run, once: the script must be passed the set
// of every kind it moves a timer in.
//
// With WaitReplicas, a claim that moved timers waits for them like Apply,
// and fails likewise; its keys then wait for their lease. A claim of
// nothing wrote nothing, and does not fail for want of replicas, though
// the WAIT sent with it may hold it up to WaitTimeout.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	for range claimRuns {
		keys, unknown, err := s.claim(ctx, now, lease, limit)
		if err != nil || len(unknown) == 0 {
			return keys, err
		}
		s.learn(unknown)
	}
	return nil, errors.New("redis store: claiming timers: new kinds of key keep coming")
}

// claim runs claimScript once. It returns the keys claimed, or the kinds
// the script met and was not given the sets of.
func (s *Store) claim(ctx context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, []string, error) {
	keys, args := s.kindArgs([]string{s.byDue},
		[]any{now.UnixMilli(), millis(lease), limit})
	res, wait := s.run(ctx, claimScript, keys, args...)
	first, second, err := pair(res)
	if err != nil {
		return nil, nil, unavailable("claiming timers", err)
	}
	claimed, unknown := stringList(first), stringList(second)
	if len(unknown) > 0 {
		return nil, unknown, nil
	}
	if err := s.replicated("claiming timers", wait); err != nil && len(claimed) > 0 {
		return nil, nil, err
	}
	return claimed, nil, nil
}

// errMalformed says a script answered with something it does not send.
var errMalformed = errors.New("malformed answer")

// pair reads an answer made of two parts, as every script but applyScript
// sends.
func pair(res *redis.Cmd) (any, any, error) {
	v, err := res.Slice()
	if err != nil {
		return nil, nil, err
	}
	if len(v) != 2 {
		return nil, nil, errMalformed
	}
	return v[0], v[1], nil
}

// stringList returns the strings of a list in an answer.
func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// errNotFilled says the sets of kinds are not filled yet.
var errNotFilled = errors.New("the timers of kinds are not filled yet")

// Timers implements flow.Store in one script. For a prefix that is a
// kind, such as "d/", it reads the kind's set, and its cost follows limit;
// for another prefix it reads every timer that matches.
//
// On a store written before there were sets of kinds, the first call for
// a kind fills them, in short scripts, until done or ctx ends; a call
// that ends first leaves the rest to the next.
func (s *Store) Timers(ctx context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	timers, total, err := s.timers(ctx, prefix, limit)
	if errors.Is(err, errNotFilled) {
		if err := s.fill(ctx); err != nil {
			return nil, 0, err
		}
		timers, total, err = s.timers(ctx, prefix, limit)
	}
	if err != nil {
		return nil, 0, unavailable("listing timers", err)
	}
	return timers, total, nil
}

// timers runs timersScript once.
func (s *Store) timers(ctx context.Context, prefix string, limit int) ([]flow.Timer, int, error) {
	keys := []string{s.byDue, s.byKey}
	if prefix != "" && kindOf(prefix) == prefix {
		keys = append(keys, s.layout, s.kindKey(prefix))
	}
	lo, hi := lexRange(prefix)
	first, second, err := pair(timersScript.Run(ctx, s.c, keys, prefix, lo, hi,
		max(limit, 0), layoutVersion))
	if err != nil {
		return nil, 0, err
	}

	total, _ := first.(int64)
	if total < 0 {
		return nil, 0, errNotFilled
	}
	pairs, _ := second.([]any)
	out := make([]flow.Timer, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		key, _ := pairs[i].(string)
		due, _ := pairs[i+1].(string)
		out = append(out, flow.Timer{Key: key, Due: time.UnixMilli(parseInt(due))})
	}
	return out, int(total), nil
}

// fill runs fillScript until the layout marker says the sets of kinds are
// filled. Every run moves the cursor or teaches the store a kind, so the
// loop ends.
func (s *Store) fill(ctx context.Context) error {
	for {
		keys, args := s.kindArgs([]string{s.layout, s.byKey, s.byDue},
			[]any{layoutVersion, fillBatch})
		done, unknown, err := pair(fillScript.Run(ctx, s.c, keys, args...))
		if err != nil {
			return unavailable("filling the timers of kinds", err)
		}
		if done == int64(1) {
			return nil
		}
		s.learn(stringList(unknown))
	}
}

// lexRange returns the ZRANGEBYLEX bounds of the keys starting with prefix.
func lexRange(prefix string) (string, string) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return "[" + prefix, "(" + string(b[:i+1])
		}
	}
	return "[" + prefix, "+"
}
