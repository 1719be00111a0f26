package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// finishURL returns the finish page of the flow a callback URL names.
func finishURL(callback string) string {
	u, _ := url.Parse(callback)
	parts := strings.SplitN(u.Query().Get("state"), ".", 3)
	return u.Scheme + "://" + u.Host + "/handoff/finish?h=" + parts[0] + "." + parts[1]
}

func wantWaiting(t *testing.T, p page, what string) {
	t.Helper()
	if p.err != nil || p.status != http.StatusOK || !strings.Contains(p.body, `http-equiv="refresh"`) ||
		numberPattern.MatchString(p.body) {
		t.Fatalf("%s: %d, %v; want the waiting page: %s", what, p.status, p.err, p.body)
	}
}

// wantNumber returns the number a page shows.
func wantNumber(t *testing.T, p page, what string) string {
	t.Helper()
	m := numberPattern.FindStringSubmatch(p.body)
	if p.err != nil || p.status != http.StatusOK || m == nil {
		t.Fatalf("%s: %d, %v; want a number: %s", what, p.status, p.err, p.body)
	}
	return m[1]
}

// wantPending checks that the bot sees the flow pending.
func (c *cluster) wantPending() {
	c.t.Helper()
	st, err := c.bot.Status(context.Background(), jane.Key())
	if err != nil || st.Status != flow.StatusPending {
		c.t.Fatalf("status = %+v, %v; want pending", st, err)
	}
}

// wantOneCompletion verifies number through the API and checks that the
// bot heard of the completion once, with the result of the first code.
func (c *cluster) wantOneCompletion(number string) {
	c.t.Helper()
	ctx := context.Background()
	res, err := c.bot.Verify(ctx, jane.Key(), number)
	if err != nil || res.Status != flow.StatusVerified ||
		!strings.Contains(string(res.Result), `"accessToken":"access-code-1"`) {
		c.t.Fatalf("verify = %+v, %v", res, err)
	}
	for _, e := range c.engines {
		e.Work(ctx)
	}
	if evs := c.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventCompleted {
		c.t.Errorf("events = %+v; want one completion", evs)
	}
}

func TestKeyOutageAfterExchangeWaits(t *testing.T) {
	c := newCluster(t)
	b, callback := c.signIn()

	// The keys are fetched before the exchange; then the provider rotates
	// its key and the key endpoint goes down, so the token names a key
	// that cannot be fetched.
	block := make(chan struct{})
	c.idp.set(func(f *fakeIdP) { f.block = block })
	first := make(chan page, 1)
	go func() { first <- get(b, callback, "1") }()
	for c.idp.count(&c.idp.keyFetches) < 1 {
		time.Sleep(time.Millisecond)
	}
	c.idp.set(func(f *fakeIdP) { f.keyID, f.keysDown, f.block = "k2", true, nil })
	close(block)
	wantWaiting(t, <-first, "callback")
	c.wantPending()

	// While the keys stay down, the finish page and a reload of the
	// callback wait, and the code is not exchanged again.
	finish := finishURL(callback)
	wantWaiting(t, get(b, finish, "1"), "finish while the keys are down")
	wantWaiting(t, get(b, callback, "2"), "reloaded callback")
	c.wantPending()

	c.idp.set(func(f *fakeIdP) { f.keysDown = false })
	number := wantNumber(t, get(b, finish, "1"), "finish once the keys are back")
	if n := c.idp.count(&c.idp.exchanges); n != 1 {
		t.Errorf("exchanges = %d; want 1", n)
	}
	c.wantOneCompletion(number)
}

// userinfoCluster is a cluster of plain OAuth 2.0 providers that read the
// fake's userinfo endpoint.
func userinfoCluster(t *testing.T) *cluster {
	return newCluster(t, func(cfg *Config) {
		base := cfg.Issuer
		cfg.Issuer, cfg.AuthURL, cfg.TokenURL = "", base+"/authorize", base+"/token"
		cfg.UserinfoURL = base + "/userinfo"
	})
}

func TestUserinfoOutageAfterExchangeWaits(t *testing.T) {
	c := userinfoCluster(t)
	b, callback := c.signIn()
	c.idp.set(func(f *fakeIdP) { f.userStatus = http.StatusServiceUnavailable })
	wantWaiting(t, get(b, callback, "1"), "callback")
	exchanges := c.idp.count(&c.idp.exchanges)
	c.wantPending()
	finish := finishURL(callback)
	wantWaiting(t, get(b, finish, "2"), "finish while userinfo is down")
	wantWaiting(t, get(b, callback, "1"), "reloaded callback")

	// Two browser tabs refresh at once, on both instances, once the user
	// endpoint is back: the flow is settled once, and one shows the number.
	c.idp.set(func(f *fakeIdP) { f.userStatus = 0 })
	pages := make(chan page, 2)
	for _, instance := range []string{"1", "2"} {
		go func() { pages <- get(b, finish, instance) }()
	}
	var numbers []string
	for range 2 {
		p := <-pages
		if m := numberPattern.FindStringSubmatch(p.body); m != nil {
			numbers = append(numbers, m[1])
		} else if p.status != http.StatusOK || !strings.Contains(p.body, "Number already shown") {
			t.Errorf("other finish: %d, %v: %s", p.status, p.err, p.body)
		}
	}
	if len(numbers) != 1 {
		t.Fatalf("numbers shown = %v; want one", numbers)
	}
	if n := c.idp.count(&c.idp.exchanges); n != exchanges {
		t.Errorf("exchanges = %d; want %d", n, exchanges)
	}
	if n := c.idp.count(&c.idp.userFetches); n < 4 {
		t.Errorf("user fetches = %d; want one per check", n)
	}
	c.wantOneCompletion(numbers[0])
}

func TestUserinfoRefusalFails(t *testing.T) {
	c := userinfoCluster(t)
	b, callback := c.signIn()
	c.idp.set(func(f *fakeIdP) { f.userStatus = http.StatusUnauthorized })
	p := get(b, callback, "1")
	if p.err != nil || p.status != http.StatusBadGateway || strings.Contains(p.body, "refresh") {
		t.Errorf("callback: %d, %v: %s", p.status, p.err, p.body)
	}
	st, err := c.bot.Status(context.Background(), jane.Key())
	if err != nil || st.Status != flow.StatusFailed || st.Error != FailUser {
		t.Errorf("status = %+v, %v; want failed with %s", st, err, FailUser)
	}
}

func TestGitHubUserOutageWaits(t *testing.T) {
	gh := newFakeGitHub(t)
	h := newHarness(t, Config{Preset: PresetGitHub, GitHubURL: gh.srv.URL})
	cb := gh.authorize(h.begin())
	gh.userStatus = http.StatusBadGateway

	out, err := h.callback(cb)
	if err != nil || out == nil || !out.Waiting || out.State == nil || out.Failure != "" {
		t.Fatalf("callback = %+v, %v; want waiting with state", out, err)
	}
	if strings.Contains(string(out.State), "SECRET") {
		t.Errorf("state keeps the provider's answer: %s", out.State)
	}
	h.f.State = out.State
	if _, err := h.p.Recheck(context.Background(), h.f); !errors.Is(err, flow.ErrProviderUnavailable) {
		t.Fatalf("recheck while down: %v; want ErrProviderUnavailable", err)
	}

	// Once /user answers, a recheck completes with the token of the
	// exchange, and the code is never sent again.
	gh.userStatus = 0
	res := h.result(h.p.Recheck(context.Background(), h.f))
	if res.AccessToken != "gho_gh-code-1" || !strings.Contains(string(res.User), "octocat") {
		t.Errorf("result = %+v", res)
	}
	if n := len(gh.grants); n != 1 || !gh.grants["gh-code-1"].used {
		t.Errorf("grants = %d", n)
	}

	// A refusal of the token fails the flow.
	gh.userStatus = http.StatusUnauthorized
	out, err = h.p.Recheck(context.Background(), h.f)
	wantFailure(t, out, err, FailUser)
}

func TestRecheckKeepsTheChecks(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	h.result(h.callback(cb))

	// A key the cached set lacks, and the key endpoint down.
	idp.set(func(f *fakeIdP) { f.keyID, f.keysDown = "k2", true })
	h.f.State = nil
	cb = idp.authorize(h.begin())
	out, err := h.callback(cb)
	if err != nil || out == nil || !out.Waiting || out.State == nil {
		t.Fatalf("callback = %+v, %v; want waiting", out, err)
	}
	h.f.State = out.State
	if _, err := h.p.Recheck(context.Background(), h.f); !errors.Is(err, flow.ErrProviderUnavailable) {
		t.Fatalf("recheck while down: %v; want ErrProviderUnavailable", err)
	}

	// A callback of the waiting flow does not exchange its code again.
	exchanges := idp.count(&idp.exchanges)
	idp.set(func(f *fakeIdP) { f.keysDown = false })
	res := h.result(h.callback(cb))
	if n := idp.count(&idp.exchanges); n != exchanges {
		t.Errorf("exchanges = %d; want %d", n, exchanges)
	}
	if res.AccessToken != "access-code-2" || res.IDToken == "" || len(res.Claims) == 0 ||
		!res.ExpiresAt.Equal(h.now.Add(time.Hour)) {
		t.Errorf("result = %+v", res)
	}

	// The nonce is still checked: a state whose nonce was changed fails.
	st, _ := openState(h.f.State)
	st.Nonce = "another"
	h.f.State, _ = json.Marshal(st)
	out, err = h.p.Recheck(context.Background(), h.f)
	wantFailure(t, out, err, FailInvalidIDToken)
}

func TestRecheckWithoutTokensHasNothingToDo(t *testing.T) {
	h, _ := oidcHarness(t, Config{})
	if out, err := h.p.Recheck(context.Background(), h.f); out != nil || err != nil {
		t.Errorf("recheck before begin = %+v, %v; want nothing", out, err)
	}
	h.begin()
	if out, err := h.p.Recheck(context.Background(), h.f); out != nil || err != nil {
		t.Errorf("recheck before the callback = %+v, %v; want nothing", out, err)
	}
}
