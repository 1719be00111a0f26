package flow

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a number of events per period, like 30 per minute.
type Rate struct {
	N   int
	Per time.Duration
}

// String writes the rate as N/PERIOD.
func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Per) }

// Limits bounds how fast clients may open links and call verify, per
// instance. A zero Rate takes the default; a Rate with N < 0 turns the limit
// off.
type Limits struct {
	// StartPerIP bounds link openings per client IP. Default: 30 per minute.
	StartPerIP Rate
	// StartPerFlow bounds flow starts per flow name, across clients, which
	// protects the provider behind it. Default: 600 per minute.
	StartPerFlow Rate
	// VerifyPerIP bounds verify calls per client IP. Default: 600 per minute.
	VerifyPerIP Rate
}

// Default limits.
var (
	DefaultStartPerIP   = Rate{N: 30, Per: time.Minute}
	DefaultStartPerFlow = Rate{N: 600, Per: time.Minute}
	DefaultVerifyPerIP  = Rate{N: 600, Per: time.Minute}
)

// ErrRateLimited means a client went over a limit; RetryAfter says when it
// may try again.
type ErrRateLimited struct{ RetryAfter time.Duration }

func (e *ErrRateLimited) Error() string {
	return fmt.Sprintf("flow: rate limited; retry after %s", e.RetryAfter)
}

// maxLimiterKeys bounds the memory of a keyed limiter: past it, keys whose
// buckets are full again are dropped.
const maxLimiterKeys = 50_000

// limiter is a token bucket per key. Buckets refill at N per Per, up to N.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	m    map[string]*rate.Limiter
}

func newLimiter(r, def Rate) *limiter {
	if r.N == 0 {
		r = def
	}
	if r.N < 0 || r.Per <= 0 {
		return nil
	}
	return &limiter{rate: r, m: map[string]*rate.Limiter{}}
}

// allow takes a token from key's bucket at now, or returns how long until
// one is there. A nil limiter allows everything.
func (l *limiter) allow(key string, now time.Time) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()

	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiterKeys {
			l.prune(now)
		}
		lim = rate.NewLimiter(rate.Limit(float64(l.rate.N)/l.rate.Per.Seconds()), l.rate.N)
		l.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &ErrRateLimited{RetryAfter: d}
	}
	return nil
}

// prune drops the buckets that are full, which hold no state worth keeping.
func (l *limiter) prune(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.rate.N) {
			delete(l.m, k)
		}
	}
}

// retryAfter writes a Retry-After header in whole seconds, at least one.
func retryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(max(d, time.Second).Seconds()))))
}
