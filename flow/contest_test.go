package flow_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

// doubled is one instance's provider in a doubled return. Return tells
// entered that it began and waits for release, if set; it then completes,
// or fails as contested, as an exchange of a code already redeemed does.
type doubled struct {
	returner
	entered   chan struct{}
	release   chan struct{}
	contested bool
	// ctxErr, if set, receives the context's error as Return ends.
	ctxErr chan error
}

func newDoubled(contested bool) *doubled {
	return &doubled{entered: make(chan struct{}, 1), contested: contested}
}

func (d *doubled) Return(ctx context.Context, _ *flow.Flow,
	_ *http.Request) (*flow.Outcome, error) {
	d.entered <- struct{}{}
	if d.release != nil {
		<-d.release
	}
	if d.ctxErr != nil {
		d.ctxErr <- ctx.Err()
	}

	if d.contested {
		return &flow.Outcome{Failure: "exchange_failed", Contested: true}, nil
	}
	return &flow.Outcome{Result: []byte(`{"ok":true}`)}, nil
}

func signinWith(p flow.Provider) envOption {
	return func(c *flow.Config) { c.Flows["signin"] = flow.FlowConfig{Provider: p} }
}

// startSignin opens a signin link in a new browser and returns the browser
// and the path of its callback.
func (e *env) startSignin() (*http.Client, string) {
	e.t.Helper()
	b := e.browser()
	resp := e.open(b, e.link(func(l *flow.Link) { l.Flow, l.Data = "signin", nil }))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "?") {
		e.t.Fatalf("start: %d, Location %q", resp.StatusCode, loc)
	}
	return b, "/handoff/callback?" + loc[strings.Index(loc, "?")+1:]
}

// answer is a page as a browser got it, from another goroutine.
type answer struct {
	status int
	body   string
	err    error
}

func fetch(b *http.Client, u string) answer {
	resp, err := b.Get(u)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(body), err: err}
}

// heldRequest is a GET of path from browser b, with its cookies, for calling
// an engine directly under a context the test ends.
func (e *env) heldRequest(ctx context.Context, b *http.Client, path string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, e.server.URL+path, nil)
	u, _ := url.Parse(e.server.URL + "/handoff/")
	for _, c := range b.Jar.Cookies(u) {
		r.AddCookie(c)
	}
	return r
}

func (e *env) status() flow.Status {
	e.t.Helper()
	st, err := e.bot.Status(context.Background(), e.key())
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st.Status
}

func TestDoubledReturnAcrossInstances(t *testing.T) {
	// Two instances share the store; the first's exchange is slow, and the
	// provider refuses the second's, as the code is spent.
	first := newDoubled(false)
	first.release = make(chan struct{})
	second := newDoubled(true)
	e := newEnv(t, signinWith(first))
	other, otherSrv := e.instance(signinWith(second))
	other.SetContestWait(time.Minute, time.Millisecond)
	b, callback := e.startSignin()

	answers := make(chan answer, 2)
	go func() { answers <- fetch(b, e.server.URL+callback) }()
	<-first.entered
	doubledAnswer := make(chan answer, 1)
	go func() { doubledAnswer <- fetch(b, otherSrv.URL+callback) }()
	<-second.entered
	close(first.release)

	a := <-answers
	m := codePattern.FindStringSubmatch(a.body)
	if a.err != nil || a.status != http.StatusOK || m == nil {
		t.Fatalf("first callback: %d, %v: %s", a.status, a.err, a.body)
	}
	// The doubled callback waits for the first, and then says the number
	// was shown: the reload abandoned the page that showed it.
	d := <-doubledAnswer
	if d.err != nil || d.status != http.StatusOK || codePattern.MatchString(d.body) ||
		!strings.Contains(d.body, "Number already shown") {
		t.Errorf("doubled callback: %d, %v: %s", d.status, d.err, d.body)
	}

	res, err := e.bot.Verify(context.Background(), e.key(), m[1])
	if err != nil || res.Status != flow.StatusVerified || string(res.Result) != `{"ok":true}` {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	if _, err := e.bot.Verify(context.Background(), e.key(), m[1]); !botkit.IsCode(err,
		"already_finished") {
		t.Errorf("second verify: %v; want already_finished", err)
	}
	e.work()
	if evs := e.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventCompleted {
		t.Errorf("events = %+v; want one completion", evs)
	}
}

func TestContestedReturnFailsAfterTheWait(t *testing.T) {
	p := newDoubled(true)
	e := newEnv(t, signinWith(p))
	const wait = 50 * time.Millisecond
	e.engine.SetContestWait(wait, 5*time.Millisecond)
	b, callback := e.startSignin()

	// No other return settles the flow: it fails once the wait is over.
	began := time.Now()
	resp, body := e.get(b, callback)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "This did not work") {
		t.Errorf("callback: %d: %s", resp.StatusCode, body)
	}
	if waited := time.Since(began); waited < wait {
		t.Errorf("failed after %v; want a wait of %v", waited, wait)
	}

	if st := e.status(); st != flow.StatusFailed {
		t.Errorf("status = %s; want failed", st)
	}
	e.work()
	if evs := e.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventFailed ||
		evs[0].Error != "exchange_failed" {
		t.Errorf("events = %+v; want one failure, exchange_failed", evs)
	}
}

func TestContestedReturnLeftByTheBrowser(t *testing.T) {
	p := newDoubled(true)
	e := newEnv(t, signinWith(p))
	e.engine.SetContestWait(time.Hour, time.Millisecond)
	b, callback := e.startSignin()

	// The browser leaves during the wait (reloading once more): nothing is
	// settled, so that no failure lands over another return's completion.
	ctx, cancel := context.WithCancel(context.Background())
	served := e.serveInBackground(ctx, b, callback)
	<-p.entered
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if st := e.status(); st != flow.StatusPending {
		t.Errorf("status = %s; want pending", st)
	}
}

func TestReturnOutlivesTheBrowser(t *testing.T) {
	p := newDoubled(false)
	p.release, p.ctxErr = make(chan struct{}), make(chan error, 1)
	e := newEnv(t, signinWith(p))
	b, callback := e.startSignin()

	// The browser leaves while the provider is asked, as a reload during
	// the code exchange does: the provider's answer is recorded all the same.
	ctx, cancel := context.WithCancel(context.Background())
	served := e.serveInBackground(ctx, b, callback)
	<-p.entered
	cancel()
	close(p.release)
	if err := <-p.ctxErr; err != nil {
		t.Errorf("the provider's context ended with the browser: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if st := e.status(); st != flow.StatusCompleted {
		t.Errorf("status = %s; want completed", st)
	}
}

// serveInBackground serves the browser's request for target under ctx in
// another goroutine, and returns where the engine's error will be sent.
func (e *env) serveInBackground(ctx context.Context, b *http.Client, target string) <-chan error {
	served := make(chan error, 1)
	go func() {
		served <- e.engine.ServeHTTP(httptest.NewRecorder(), e.heldRequest(ctx, b, target), site)
	}()
	return served
}
