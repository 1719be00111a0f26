package flow_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// returner is a provider that sends the browser to its own page and
// completes when the browser comes back to {prefix}/callback.
type returner struct{}

func (returner) Kind() string { return flow.KindOAuth }

func (returner) Begin(_ context.Context, f *flow.Flow) (*flow.Step, error) {
	return &flow.Step{Redirect: "https://idp.example.com/authorize?state=" + f.Handle + ".s"}, nil
}

func (returner) Return(context.Context, *flow.Flow, *http.Request) (*flow.Outcome, error) {
	return &flow.Outcome{Result: []byte(`{"ok":true}`)}, nil
}

func TestReplayedReturnIsRefused(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) {
		c.Flows["signin"] = flow.FlowConfig{Provider: returner{}}
	})
	b := e.browser()
	resp := e.open(b, e.link(func(l *flow.Link) { l.Flow, l.Data = "signin", nil }))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	callback := "/handoff/callback?" + loc[strings.Index(loc, "?")+1:]

	resp, body := e.get(b, callback)
	if resp.StatusCode != http.StatusOK || !codePattern.MatchString(body) {
		t.Fatalf("callback: %d: %s", resp.StatusCode, body)
	}

	// The same callback again shows no number and says the task is done.
	resp, body = e.get(b, callback)
	if resp.StatusCode != http.StatusConflict || codePattern.MatchString(body) ||
		!strings.Contains(body, "Already finished") {
		t.Errorf("replayed callback: %d: %s", resp.StatusCode, body)
	}
}

// rechecker is a returner whose return leaves the flow waiting, and whose
// Recheck answers with err, or else completes.
type rechecker struct {
	returner
	err     error
	checked int
}

func (*rechecker) Return(context.Context, *flow.Flow, *http.Request) (*flow.Outcome, error) {
	return &flow.Outcome{Waiting: true, State: []byte(`{"kept":true}`)}, nil
}

func (p *rechecker) Recheck(_ context.Context, f *flow.Flow) (*flow.Outcome, error) {
	p.checked++
	if string(f.State) != `{"kept":true}` {
		return nil, errors.New("state not kept")
	}
	if p.err != nil {
		return nil, p.err
	}
	return &flow.Outcome{Result: []byte(`{"ok":true}`)}, nil
}

func TestWaitingFlowIsRechecked(t *testing.T) {
	p := &rechecker{err: fmt.Errorf("keys: %w", flow.ErrProviderUnavailable)}
	e := newEnv(t, func(c *flow.Config) {
		c.Flows["signin"] = flow.FlowConfig{Provider: p}
	})
	b := e.browser()
	resp := e.open(b, e.link(func(l *flow.Link) { l.Flow, l.Data = "signin", nil }))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	state := loc[strings.Index(loc, "state=")+6:]
	callback := "/handoff/callback?state=" + state
	finish := "/handoff/finish?h=" + state[:strings.LastIndex(state, ".")]
	waiting := func(what string, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh"`) {
			t.Fatalf("%s: %d: %s", what, resp.StatusCode, body)
		}
	}

	// The return leaves the flow waiting; a reload of it and the finish
	// page recheck, and wait while the provider is unavailable.
	resp, body := e.get(b, callback)
	waiting("callback", resp, body)
	resp, body = e.get(b, callback)
	waiting("reloaded callback", resp, body)
	resp, body = e.get(b, finish)
	waiting("finish", resp, body)
	if p.checked != 2 {
		t.Errorf("rechecks = %d; want 2", p.checked)
	}

	// Another error shows the error page and leaves the flow waiting.
	p.err = flow.ErrBadRequest
	if resp, body = e.get(b, finish); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("finish after a recheck error: %d: %s", resp.StatusCode, body)
	}

	p.err = nil
	resp, body = e.get(b, finish)
	m := codePattern.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("finish: %d: %s", resp.StatusCode, body)
	}
	if resp, body = e.get(b, finish); codePattern.MatchString(body) {
		t.Errorf("second finish shows the number again: %d", resp.StatusCode)
	}
	res, err := e.bot.Verify(context.Background(), e.key(), m[1])
	if err != nil || res.Status != flow.StatusVerified {
		t.Errorf("verify = %+v, %v", res, err)
	}
	e.work()
	if evs := e.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventCompleted {
		t.Errorf("events = %+v; want one completion", evs)
	}
}
