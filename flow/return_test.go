package flow_test

import (
	"context"
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
