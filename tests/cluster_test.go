package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// Users and the bot see one origin; a load balancer sends each request to
// any instance. The tests choose the instance of every request.
const (
	publicOrigin = "http://handoff.test"
	publicBase   = publicOrigin + "/handoff"
	stateKey     = "test-state-key-0123456789abcdef-0123456789"
)

// clusterCaddyfile returns the Caddyfile of one instance: a catch-all site
// with the shared audience, state key and Redis.
func clusterCaddyfile(redisAddr, upstream, hook string, withStateKey bool) func(int) string {
	state := ""
	if withStateKey {
		state = "state_key {env.HANDOFF_STATE_KEY}"
	}
	return func(port int) string {
		return fmt.Sprintf(`http://:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		%s
		audience %s
		store redis %s {
			key_prefix test:
			dial_timeout 500ms
			read_timeout 1s
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
`, port, state, publicBase, redisAddr, hook, strings.TrimPrefix(upstream, "http://"))
	}
}

// cluster is two Caddy instances sharing one Redis, one site and one bot.
type cluster struct {
	redis *redistest.Server
	a, b  *Caddy
	hooks *hookReceiver
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t), hooks: newHookReceiver()}
	up := testSite(t)
	hookSrv := httptest.NewServer(c.hooks)
	t.Cleanup(hookSrv.Close)

	site := clusterCaddyfile(c.redis.Addr, up.URL, hookSrv.URL+"/hook", true)
	env := append(slices.Clone(botEnv), "HANDOFF_STATE_KEY="+stateKey)
	c.a, c.b = startCaddy(t, site, env...), startCaddy(t, site, env...)
	return c
}

// via returns a transport that sends every request to instance c, on a new
// connection each time, whatever host the URL names.
func via(c *Caddy) http.RoundTripper {
	addr := fmt.Sprintf("127.0.0.1:%d", c.Port)
	var d net.Dialer
	return &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
}

// on makes the browser's next requests go to instance c.
func (b *browser) on(c *Caddy) *browser {
	b.client.Transport = via(c)
	return b
}

// botOn returns a bot API client whose calls go to instance c.
func botOn(t *testing.T, c *Caddy) *botkit.Client {
	bk := bot(t, publicBase)
	bk.HTTP = &http.Client{Transport: via(c), Timeout: 15 * time.Second}
	return bk
}

// post sends an empty POST, as the site's confirm button does.
func (b *browser) post(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	return b.do(req)
}

// waitHealthy waits until an instance reports its store reachable.
func waitHealthy(t *testing.T, c *Caddy) {
	t.Helper()
	hc := &http.Client{Transport: via(c), Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get(publicBase + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance on port %d not healthy: %v", c.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func healthStatus(t *testing.T, c *Caddy) int {
	t.Helper()
	hc := &http.Client{Transport: via(c), Timeout: 10 * time.Second}
	resp, err := hc.Get(publicBase + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Every step of a site flow lands on the other instance than the step
// before: start on A, task on B, finish on A, verify on B, status on A.
func TestClusterEveryStepOnAnotherInstance(t *testing.T) {
	c := newCluster(t)
	alice, ctx := refFor("alice"), context.Background()
	data := map[string]any{"orderId": "o-9"}
	link, err := botOn(t, c.a).Link("checkout", alice, data, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)

	resp, body := b.on(c.a).open(link)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther ||
		loc != publicOrigin+"/checkout" {
		t.Fatalf("start on A: %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = b.on(c.b).get(publicOrigin + "/checkout")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "Pay </button>") {
		t.Fatalf("task on B: %d: %s", resp.StatusCode, body)
	}
	resp, body = b.on(c.a).post(publicOrigin + "/checkout/confirm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish on A: %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)

	res, err := botOn(t, c.b).Verify(ctx, alice.Key(), code)
	if err != nil || res.Status != flow.StatusVerified ||
		!strings.Contains(string(res.Result), "order-7") {
		t.Fatalf("verify on B: %+v, %v", res, err)
	}
	st, err := botOn(t, c.a).Status(ctx, alice.Key())
	if err != nil || st.Status != flow.StatusVerified || st.FlowID != res.FlowID {
		t.Fatalf("status on A: %+v, %v", st, err)
	}

	evs := c.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventCompleted || evs[0].FlowID != res.FlowID {
		t.Errorf("events = %+v", evs)
	}
	for _, inst := range []*Caddy{c.a, c.b} {
		if got := healthStatus(t, inst); got != http.StatusOK {
			t.Errorf("healthz of port %d = %d", inst.Port, got)
		}
		assertNoSecrets(t, inst.Logs(), code, link, linkSecret, stateKey, webhookSecret)
	}
}

// verifyOutcome is the answer to one verify call, as the bot sees it.
type verifyOutcome struct {
	code string
	left int
}

// verifyAll sends every code at once, spread over the instances.
func verifyAll(t *testing.T, c *cluster, k flow.Key, codes []string) []verifyOutcome {
	t.Helper()
	bots := []*botkit.Client{botOn(t, c.a), botOn(t, c.b)}
	out := make([]verifyOutcome, len(codes))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, code := range codes {
		wg.Go(func() {
			<-start
			_, err := bots[i%2].Verify(context.Background(), k, code)
			if err == nil {
				out[i] = verifyOutcome{code: "verified"}
				return
			}
			ae, ok := err.(*botkit.APIError)
			if !ok {
				out[i] = verifyOutcome{code: err.Error()}
				return
			}
			out[i] = verifyOutcome{code: ae.Code}
			if ae.AttemptsLeft != nil {
				out[i].left = *ae.AttemptsLeft
			}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// finishFlow runs a site flow for ref on instance A and returns the number.
func (c *cluster) finishFlow(t *testing.T, ref flow.Ref) string {
	t.Helper()
	link, _ := botOn(t, c.a).Link("checkout", ref, nil, 10*time.Minute)
	b := newBrowser(t).on(c.a)
	if resp, body := b.open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d: %s", resp.StatusCode, body)
	}
	resp, body := b.post(publicOrigin + "/checkout/confirm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish: %d: %s", resp.StatusCode, body)
	}
	return numberOn(t, body)
}

func wrongCode(code string) string {
	if code == "000000" {
		return "999999"
	}
	return "000000"
}

// Wrong numbers sent at once to both instances are counted exactly: each
// of the attempts left is answered once, then the flow is locked; and a
// right number sent many times at once is released once.
func TestClusterConcurrentVerify(t *testing.T) {
	c := newCluster(t)
	alice, bob := refFor("alice"), refFor("bob")

	wrong := wrongCode(c.finishFlow(t, alice))
	outcomes := verifyAll(t, c, alice.Key(), slices.Repeat([]string{wrong}, 12))
	var left []int
	locked := 0
	for _, o := range outcomes {
		switch o.code {
		case "invalid_code":
			left = append(left, o.left)
		case "locked":
			locked++
		default:
			t.Errorf("unexpected answer %+v", o)
		}
	}
	slices.Sort(left)
	if !slices.Equal(left, []int{1, 2, 3, 4}) || locked != 8 {
		t.Errorf("attempts left answered %v and %d locked; want 1 2 3 4 once each and 8 locked",
			left, locked)
	}

	code := c.finishFlow(t, bob)
	codes := slices.Repeat([]string{code, wrongCode(code)}, 4)
	outcomes = verifyAll(t, c, bob.Key(), codes)
	verified, left := 0, nil
	for i, o := range outcomes {
		switch {
		case o.code == "verified":
			verified++
		case o.code == "invalid_code" && codes[i] != code:
			left = append(left, o.left)
		case o.code != "already_finished":
			t.Errorf("%s: unexpected answer %+v", codes[i], o)
		}
	}
	slices.Sort(left)
	var want []int // the wrong numbers counted before the right one: 4, 3, ... left
	for i := range left {
		want = append(want, 5-len(left)+i)
	}
	if verified != 1 || !slices.Equal(left, want) {
		t.Errorf("%d verified, attempts left %v; want one verified and distinct counts from 4 down",
			verified, left)
	}

	// Alice's lock and Bob's completion reach the bot once each.
	evs := c.hooks.waitEvents(t, 3)
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Type]++
	}
	if kinds[flow.EventCompleted] != 2 || kinds[flow.EventFailed] != 1 {
		t.Errorf("events by type = %v; want 2 completed, 1 failed", kinds)
	}
}

// While Redis is down, users are asked to try again (503, with a page that
// says so) and the bot API answers 503; nothing is half-written. Once Redis
// is back, the instances work again without a restart, and the flow
// completes.
func TestClusterRedisDownAndBack(t *testing.T) {
	c := newCluster(t)
	alice, carol, ctx := refFor("alice"), refFor("carol"), context.Background()
	link, _ := botOn(t, c.a).Link("checkout", alice, nil, 10*time.Minute)
	b := newBrowser(t)
	if resp, body := b.on(c.a).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d: %s", resp.StatusCode, body)
	}

	c.redis.Stop()
	carolLink, _ := botOn(t, c.a).Link("checkout", carol, nil, 10*time.Minute)
	type step func() (*http.Response, string)
	steps := map[string]step{
		"task page on B": func() (*http.Response, string) {
			return b.on(c.b).get(publicOrigin + "/checkout")
		},
		"finish on A": func() (*http.Response, string) {
			return b.on(c.a).post(publicOrigin + "/checkout/confirm")
		},
		"another start on B": func() (*http.Response, string) {
			return newBrowser(t).on(c.b).open(carolLink)
		},
	}
	for name, step := range steps {
		resp, body := step()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "Please try again") {
			t.Errorf("%s with Redis down: %d: %s", name, resp.StatusCode, body)
		}
	}
	_, err := botOn(t, c.b).Status(ctx, alice.Key())
	ae, ok := err.(*botkit.APIError)
	if !ok || ae.Status != http.StatusServiceUnavailable || ae.Code != "unavailable" {
		t.Errorf("status with Redis down: %v; want 503 unavailable", err)
	}
	_, err = botOn(t, c.a).Verify(ctx, alice.Key(), "123456")
	if !botkit.IsCode(err, "unavailable") {
		t.Errorf("verify with Redis down: %v; want unavailable", err)
	}
	if got := healthStatus(t, c.a); got != http.StatusServiceUnavailable {
		t.Errorf("healthz with Redis down = %d; want 503", got)
	}

	// Back, from its append-only file; the instances were not restarted.
	c.redis.Start()
	waitHealthy(t, c.a)
	waitHealthy(t, c.b)
	resp, body := b.on(c.b).post(publicOrigin + "/checkout/confirm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish once Redis is back: %d: %s", resp.StatusCode, body)
	}
	if res, err := botOn(t, c.a).Verify(ctx, alice.Key(), numberOn(t, body)); err != nil ||
		res.Status != flow.StatusVerified {
		t.Fatalf("verify once Redis is back: %+v, %v", res, err)
	}

	// The start refused while Redis was down left nothing: no flow, and the
	// link is not used up.
	if _, err := botOn(t, c.b).Status(ctx, carol.Key()); !botkit.IsCode(err, "no_flow") {
		t.Errorf("carol's status after a refused start: %v; want no_flow", err)
	}
	if resp, body := newBrowser(t).on(c.a).open(carolLink); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("carol's link once Redis is back: %d: %s", resp.StatusCode, body)
	}
	if evs := c.hooks.waitEvents(t, 1); evs[0].Type != flow.EventCompleted {
		t.Errorf("events = %+v", evs)
	}
}

// A Redis restart in the middle of a flow, with the data kept by the
// append-only file, goes unnoticed: the flow completes and verifies.
func TestClusterRedisRestartMidFlow(t *testing.T) {
	c := newCluster(t)
	alice, ctx := refFor("alice"), context.Background()
	link, _ := botOn(t, c.a).Link("checkout", alice, nil, 10*time.Minute)
	b := newBrowser(t)
	if resp, body := b.on(c.a).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d: %s", resp.StatusCode, body)
	}

	c.redis.Restart()
	resp, body := b.on(c.b).post(publicOrigin + "/checkout/confirm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish after the restart: %d: %s", resp.StatusCode, body)
	}
	res, err := botOn(t, c.a).Verify(ctx, alice.Key(), numberOn(t, body))
	if err != nil || res.Status != flow.StatusVerified {
		t.Fatalf("verify after the restart: %+v, %v", res, err)
	}
}

// Caddy starts while Redis is not up yet, warns that the state key is not
// shared, and serves flows as soon as Redis answers.
func TestRedisUnreachableAtStart(t *testing.T) {
	srv := redistest.New(t)
	up := testSite(t)
	hooks := newHookReceiver()
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	inst := startCaddy(t, clusterCaddyfile(srv.Addr, up.URL, hookSrv.URL, false), botEnv...)

	if !strings.Contains(inst.Logs(), "store redis without state_key") {
		t.Errorf("no warning about the state key in the logs")
	}
	if got := healthStatus(t, inst); got != http.StatusServiceUnavailable {
		t.Errorf("healthz before Redis = %d; want 503", got)
	}

	srv.Start()
	waitHealthy(t, inst)
	alice := refFor("alice")
	link, _ := botOn(t, inst).Link("checkout", alice, nil, 10*time.Minute)
	b := newBrowser(t).on(inst)
	if resp, body := b.open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start once Redis is up: %d: %s", resp.StatusCode, body)
	}
	resp, body := b.post(publicOrigin + "/checkout/confirm")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish: %d: %s", resp.StatusCode, body)
	}
	_, err := botOn(t, inst).Verify(context.Background(), alice.Key(), numberOn(t, body))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
}
