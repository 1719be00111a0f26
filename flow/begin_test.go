package flow_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// earlyBeginner is a provider the engine may ask before it stores a new
// flow. It keeps state, remembers the states it was given back, and fails
// while down is set.
type earlyBeginner struct {
	mu    sync.Mutex
	down  bool
	calls int
	seen  []string
}

func (p *earlyBeginner) Kind() string { return flow.KindOAuth }
func (p *earlyBeginner) BeginsEarly() {}

func (p *earlyBeginner) Begin(_ context.Context, f *flow.Flow) (*flow.Step, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.seen = append(p.seen, string(f.State))
	if p.down {
		return nil, flow.ErrProviderUnavailable
	}
	step := &flow.Step{Redirect: "https://idp.example.com/authorize?state=" + f.Handle}
	if f.State == nil {
		step.State = []byte("verifier-of-" + f.ID)
	}
	return step, nil
}

// countingStore counts the writes of the store it wraps.
type countingStore struct {
	flow.Store
	mu     sync.Mutex
	writes int
}

func (s *countingStore) Apply(ctx context.Context, ops ...flow.Op) error {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return s.Store.Apply(ctx, ops...)
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func TestEarlyBeginStoresStateInOneWrite(t *testing.T) {
	p := &earlyBeginner{}
	var st *countingStore
	e := newEnv(t, func(c *flow.Config) {
		st = &countingStore{Store: c.Store}
		c.Store = st
		c.Flows["signin"] = flow.FlowConfig{Provider: p}
	})
	link := e.link(func(l *flow.Link) { l.Flow, l.Data = "signin", nil })
	b := e.browser()

	resp := e.open(b, link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example.com/") {
		t.Fatalf("start: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := st.count(); n != 1 {
		t.Errorf("start wrote %d times; want 1", n)
	}

	// The state went into that write: opening the link again gives it back.
	resp = e.open(b, link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || p.calls != 2 ||
		!strings.HasPrefix(p.seen[1], "verifier-of-") {
		t.Errorf("resume: %d; provider saw states %q", resp.StatusCode, p.seen)
	}
}

func TestEarlyBeginFailureKeepsTheFlow(t *testing.T) {
	p := &earlyBeginner{down: true}
	e := newEnv(t, func(c *flow.Config) { c.Flows["signin"] = flow.FlowConfig{Provider: p} })
	link := e.link(func(l *flow.Link) { l.Flow, l.Data = "signin", nil })
	b := e.browser()

	// The provider is down: the flow is open but the browser cannot go on.
	resp := e.open(b, link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || p.calls != 1 {
		t.Fatalf("start with the provider down: %d after %d calls", resp.StatusCode, p.calls)
	}
	st, err := e.bot.Status(context.Background(), e.key())
	if err != nil || st.Status != flow.StatusPending {
		t.Fatalf("status = %+v, %v; want pending", st, err)
	}

	// Once it is back, the same browser opens the same link and goes on.
	p.down = false
	resp = e.open(b, link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || p.seen[1] != "" {
		t.Fatalf("retry: %d; provider saw states %q", resp.StatusCode, p.seen)
	}
}
