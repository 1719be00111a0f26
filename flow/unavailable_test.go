package flow_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

// downStore is a store that can be switched off, as Redis going away.
type downStore struct {
	flow.Store
	down atomic.Bool
}

func (s *downStore) Get(ctx context.Context, key string) (flow.Entry, error) {
	if s.down.Load() {
		return flow.Entry{}, flow.ErrStoreUnavailable
	}
	return s.Store.Get(ctx, key)
}

func (s *downStore) Apply(ctx context.Context, ops ...flow.Op) error {
	if s.down.Load() {
		return flow.ErrStoreUnavailable
	}
	return s.Store.Apply(ctx, ops...)
}

func (s *downStore) Claim(ctx context.Context, now time.Time, lease time.Duration,
	limit int) ([]string, error) {
	if s.down.Load() {
		return nil, flow.ErrStoreUnavailable
	}
	return s.Store.Claim(ctx, now, lease, limit)
}

// With the store away, every step a user takes is answered 503 with a page
// asking to try again, and the bot API 503; a site task is not passed to
// the site without its flow. Once the store is back the flow completes.
func TestStoreUnavailable(t *testing.T) {
	store := &downStore{}
	e := newEnv(t, func(cfg *flow.Config) {
		store.Store = cfg.Store
		cfg.Store = store
	})
	b := e.browser()
	resp := e.open(b, e.link())
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}

	store.down.Store(true)
	for _, path := range []string{"/checkout", "/checkout/done"} {
		resp, body := e.get(b, path)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "try again") ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the store down: %d: %s", path, resp.StatusCode, body)
		}
	}
	newer := e.link(func(l *flow.Link) { l.Now = l.Now.Add(time.Second) })
	if resp := e.open(e.browser(), newer); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("start with the store down: %d", resp.StatusCode)
	}
	if _, err := e.bot.Status(context.Background(), e.key()); !botkit.IsCode(err, "unavailable") {
		t.Errorf("status with the store down: %v; want unavailable", err)
	}

	// A browser with no flow still reaches the site.
	if resp, _ := e.get(e.browser(), "/checkout"); resp.StatusCode != http.StatusOK {
		t.Errorf("a task page without a flow, store down: %d; want the site's 200", resp.StatusCode)
	}

	store.down.Store(false)
	resp, body := e.get(b, "/checkout/done")
	if resp.StatusCode != http.StatusOK || !codePattern.MatchString(body) {
		t.Fatalf("completion once the store is back: %d: %s", resp.StatusCode, body)
	}
}
