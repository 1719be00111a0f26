package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

// testSite is the site behind Caddy: a checkout task that completes when
// its form is posted, and a page that shows the Handoff-* headers it got.
func testSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<form method="post" action="/checkout/confirm"><button>Pay %s</button></form>`,
			r.Header.Get("Handoff-Flow-Id"))
	})
	mux.HandleFunc("POST /checkout/confirm", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Handoff-Flow-Id") == "" {
			http.Error(w, "no flow", http.StatusBadRequest)
			return
		}
		result, _ := json.Marshal(map[string]string{
			"orderId": "order-7", "user": r.Header.Get("Handoff-User-Id"),
			"data": r.Header.Get("Handoff-Data"),
		})
		w.Header().Set("Handoff-Complete", string(result))
		io.WriteString(w, "SITE-BODY-NOT-FOR-BROWSER")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		hdr := map[string]string{}
		for k, v := range r.Header {
			hdr[k] = strings.Join(v, ",")
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": hdr})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// siteCaddyfile returns the Caddyfile of a handler in front of upstream,
// with a webhook signal to hook and the given store.
func siteCaddyfile(upstream, hook, store string) func(int) string {
	return func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store %s
		insecure_test_clock
		pages {
			bot_name "Test Bot"
		}
		site checkout {
			to /checkout
		}
		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	reverse_proxy %s
}
`, port, store, hook, strings.TrimPrefix(upstream, "http://"))
	}
}

type siteEnv struct {
	caddy *Caddy
	hooks *hookReceiver
	base  string
	bot   *botkit.Client
}

func newSiteEnv(t *testing.T, store string) *siteEnv {
	t.Helper()
	up := testSite(t)
	hooks := newHookReceiver()
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	c := startCaddy(t, siteCaddyfile(up.URL, hookSrv.URL+"/hook", store), botEnv...)
	base := c.URL + "/handoff"
	return &siteEnv{caddy: c, hooks: hooks, base: base, bot: bot(t, base)}
}

// finish runs the site task in b from link to finish page, and returns the
// number shown.
func (s *siteEnv) finish(t *testing.T, b *browser, link string) string {
	t.Helper()
	resp, body := b.open(link)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d: %s", resp.StatusCode, body)
	}
	resp, body = b.get(s.caddy.URL + resp.Header.Get("Location")[len(s.caddy.URL):])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("task page: %d: %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, s.caddy.URL+"/checkout/confirm", nil)
	resp, body = b.do(req)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "SITE-BODY") ||
		resp.Header.Get("Handoff-Complete") != "" {
		t.Fatalf("finish page: %d %v: %s", resp.StatusCode, resp.Header, body)
	}
	return numberOn(t, body)
}

func TestSiteFlowThroughCaddy(t *testing.T) {
	s := newSiteEnv(t, "storage")
	alice, ctx := refFor("alice"), context.Background()
	link, err := s.bot.Link("checkout", alice, map[string]any{"orderId": "o-1"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	code := s.finish(t, b, link)

	st, err := s.bot.Status(ctx, alice.Key())
	if err != nil || st.Status != flow.StatusCompleted {
		t.Fatalf("status = %+v, %v; want completed", st, err)
	}

	// Bob, in the same group chat, has no flow; Alice's number is not his.
	if _, err := s.bot.Verify(ctx, refFor("bob").Key(), code); !botkit.IsCode(err, "no_flow") {
		t.Errorf("bob verifying alice's number: %v; want no_flow", err)
	}

	res, err := s.bot.Verify(ctx, alice.Key(), "my code is "+flow.GroupCode(code))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var result map[string]string
	_ = json.Unmarshal(res.Result, &result)
	if result["orderId"] != "order-7" || result["user"] != "29:alice" || !strings.Contains(result["data"], "o-1") {
		t.Errorf("result = %v", result)
	}
	if _, err := s.bot.Verify(ctx, alice.Key(), code); !botkit.IsCode(err, "already_finished") {
		t.Errorf("replayed verify: %v; want already_finished", err)
	}

	evs := s.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventCompleted || evs[0].FlowID != res.FlowID || evs[0].MagicNumber != "" {
		t.Errorf("event = %+v", evs[0])
	}
	assertNoSecrets(t, s.caddy.Logs(), code, link, linkSecret, webhookSecret)
}

func TestSiteFlowRefusals(t *testing.T) {
	s := newSiteEnv(t, "memory")
	alice, ctx := refFor("alice"), context.Background()
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)

	b := newBrowser(t)
	code := s.finish(t, b, link)

	// The link is used up: another browser cannot open it.
	if resp, _ := newBrowser(t).open(link); resp.StatusCode != http.StatusConflict {
		t.Errorf("second browser: %d; want 409", resp.StatusCode)
	}

	// Wrong numbers are counted, then the flow locks.
	wrong := "000000"
	if code == wrong {
		wrong = "999999"
	}
	for i := 4; i >= 1; i-- {
		_, err := s.bot.Verify(ctx, alice.Key(), wrong)
		if ae, ok := err.(*botkit.APIError); !ok || ae.Code != "invalid_code" || *ae.AttemptsLeft != i {
			t.Fatalf("wrong number: %v; want invalid_code, %d left", err, i)
		}
	}
	if _, err := s.bot.Verify(ctx, alice.Key(), wrong); !botkit.IsCode(err, "locked") {
		t.Fatalf("fifth wrong number: %v; want locked", err)
	}
	if _, err := s.bot.Verify(ctx, alice.Key(), code); !botkit.IsCode(err, "locked") {
		t.Fatalf("right number after lock: %v; want locked", err)
	}
	evs := s.hooks.waitEvents(t, 2)
	if evs[1].Type != flow.EventFailed || evs[1].Error != "too_many_attempts" {
		t.Errorf("events = %+v", evs)
	}
}

func TestExpiryByTestClock(t *testing.T) {
	s := newSiteEnv(t, "storage")
	alice, ctx := refFor("alice"), context.Background()

	// An abandoned flow expires and the bot is told.
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	if resp, _ := newBrowser(t).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	advanceClock(t, s.base, 0, 31*time.Minute)
	evs := s.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventExpired {
		t.Fatalf("event = %+v; want expiry", evs[0])
	}

	// A number not pasted in time expires.
	s.bot.Now = func() time.Time { return time.Now().Add(31 * time.Minute) }
	link, _ = s.bot.Link("checkout", alice, nil, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)
	advanceClock(t, s.base, 31*time.Minute, 11*time.Minute)
	s.bot.Now = func() time.Time { return time.Now().Add(42 * time.Minute) }
	if _, err := s.bot.Verify(ctx, alice.Key(), code); !botkit.IsCode(err, "expired") {
		t.Fatalf("late verify: %v; want expired", err)
	}

	// A link past its expiry is refused with a clear page.
	old := bot(t, s.base)
	old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	stale, _ := old.Link("checkout", alice, nil, 10*time.Minute)
	resp, body := newBrowser(t).get(stale)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") {
		t.Errorf("expired link: %d: %s", resp.StatusCode, body)
	}
}

func TestRestartAndReloadMidFlow(t *testing.T) {
	s := newSiteEnv(t, "storage")
	alice, ctx := refFor("alice"), context.Background()
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)

	b := newBrowser(t)
	if resp, _ := b.open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}

	// The flow survives a restart: the same browser finishes it.
	s.caddy.Restart()
	req, _ := http.NewRequest(http.MethodPost, s.caddy.URL+"/checkout/confirm", nil)
	resp, body := b.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish after restart: %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)

	// And a config reload; then the number verifies.
	up := testSite(t)
	s.caddy.Reload(siteCaddyfile(up.URL, "http://127.0.0.1:1/unused", "storage")(s.caddy.Port))
	res, err := s.bot.Verify(ctx, alice.Key(), code)
	if err != nil || res.Status != flow.StatusVerified {
		t.Fatalf("verify after restart and reload: %+v, %v", res, err)
	}
}

// TestKilledMidFlow kills Caddy, as a crash would, while a completed flow's
// delivery waits in the storage store's outbox: the log replays,
// the delivery lands, and the number verifies.
func TestKilledMidFlow(t *testing.T) {
	s := newSiteEnv(t, "storage")
	alice, ctx := refFor("alice"), context.Background()
	s.hooks.setFail(true)
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)

	s.caddy.Kill()
	s.hooks.setFail(false)
	s.caddy.Start()
	// The worker may deliver at once; if the delivery still waits for its
	// backoff, it is made due now.
	admin := fmt.Sprintf("127.0.0.1:%d", s.caddy.Admin)
	if out, err := Handoff(t, nil, "outbox", "--address", admin, "--retry-all"); err != nil {
		t.Fatalf("outbox after the crash: %v: %s", err, out)
	}
	if evs := s.hooks.waitEvents(t, 1); evs[0].Type != flow.EventCompleted {
		t.Errorf("event after the crash = %+v", evs[0])
	}
	res, err := s.bot.Verify(ctx, alice.Key(), code)
	if err != nil || res.Status != flow.StatusVerified {
		t.Fatalf("verify after the crash: %+v, %v", res, err)
	}
}

func TestPassThroughAndHostileInput(t *testing.T) {
	s := newSiteEnv(t, "memory")
	b := newBrowser(t)

	// Paths outside the handler reach the site, without forged headers.
	req, _ := http.NewRequest(http.MethodGet, s.caddy.URL+"/shop/item?x=1", nil)
	req.Header.Set("Handoff-Flow-Id", "forged")
	req.Header.Set("HANDOFF_USER_ID", "forged")
	resp, body := b.do(req)
	if resp.StatusCode != http.StatusOK || strings.Contains(strings.ToLower(body), "handoff") {
		t.Errorf("pass-through: %d: %s", resp.StatusCode, body)
	}

	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed link", "GET", "/handoff/start?t=not.a.jwt", "", 400},
		{"no link", "GET", "/handoff/start", "", 400},
		{"alg none", "GET", "/handoff/start?t=eyJhbGciOiJub25lIiwidHlwIjoiaGFuZG9mZi1saW5rK2p3dCJ9.e30.", "", 400},
		{"unknown path", "GET", "/handoff/nothing", "", 404},
		{"finish without cookie", "GET", "/handoff/finish?h=x", "", 400},
		{"callback without state", "GET", "/handoff/callback?code=x", "", 400},
		{"wrong method", "DELETE", "/handoff/start", "", 405},
		{"start without form", "POST", "/handoff/start", "", 400},
		{"api without token", "POST", "/handoff/api/verify", "{}", 401},
		{"api wrong method", "GET", "/handoff/api/verify", "", 405},
		{"unknown api", "GET", "/handoff/api/nothing", "", 404},
		{"webhook of no flow", "POST", "/handoff/webhook/checkout", "{}", 404},
		{"dot segments", "GET", "/handoff/../handoff/nothing", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, s.caddy.URL+c.path, strings.NewReader(c.body))
			if c.method == "POST" && c.body == "" {
				req.Header.Set("Origin", s.caddy.URL)
			}
			resp, body := b.do(req)
			if resp.StatusCode != c.want {
				t.Errorf("got %d, want %d: %s", resp.StatusCode, c.want, body)
			}
			if strings.Contains(body, "goroutine") || strings.Contains(body, "panic") {
				t.Errorf("answer leaks internals: %s", body)
			}
		})
	}

	// An API call with a link token is refused, and a body too large is
	// answered 413.
	link, _ := s.bot.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	token := link[strings.Index(link, "t=")+2:]
	req, _ = http.NewRequest(http.MethodGet, s.base+"/api/status?channelId=a&conversationId=b&userId=c", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, _ := b.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("link token as API token: %d; want 401", resp.StatusCode)
	}
	s.bot.HTTP = http.DefaultClient
	_, err := s.bot.Verify(context.Background(), refFor("alice").Key(), strings.Repeat("1", 20<<10))
	if !botkit.IsCode(err, "too_large") {
		t.Errorf("oversized verify: %v; want too_large", err)
	}
}

// assertNoSecrets fails if any secret appears in the logs.
func assertNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret (%d bytes)", len(s))
		}
	}
}
