package flow_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) {
		c.Limits = flow.Limits{
			StartPerIP:  flow.Rate{N: 2, Per: time.Minute},
			VerifyPerIP: flow.Rate{N: 3, Per: time.Minute},
		}
	})
	b := e.browser()

	for i := range 3 {
		resp, _ := e.get(b, "/handoff/start?t="+e.link())
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("opening %d: %d; want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests {
			if s, _ := strconv.Atoi(resp.Header.Get("Retry-After")); s < 1 || s > 60 {
				t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
			}
		}
	}

	// The bucket refills with time (the injected clock).
	e.clock.Advance(time.Minute)
	if resp, _ := e.get(b, "/handoff/start?t="+e.link()); resp.StatusCode != http.StatusOK {
		t.Errorf("after a minute: %d", resp.StatusCode)
	}

	ctx := context.Background()
	for range 3 {
		_, _ = e.bot.Verify(ctx, e.key(), "123456")
	}
	if _, err := e.bot.Verify(ctx, e.key(), "123456"); !botkit.IsCode(err, "rate_limited") {
		t.Errorf("fourth verify: %v; want rate_limited", err)
	}
}

func TestRateLimitsOff(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) { c.Limits.StartPerIP = flow.Rate{N: -1} })
	for i := range 50 {
		if resp, _ := e.get(e.browser(), "/handoff/start?t="+e.link()); resp.StatusCode != http.StatusOK {
			t.Fatalf("opening %d with limits off: %d", i+1, resp.StatusCode)
		}
	}
}
