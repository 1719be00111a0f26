package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

// The Stripe keys of the tests: a test-mode key and its endpoint secret.
const (
	stripeKey   = "sk_test_handofftests0123456789"
	stripeWhsec = "whsec_handofftests0123456789abcdef"
)

var stripeEnv = append(slices.Clone(botEnv),
	"STRIPE_SECRET_KEY="+stripeKey, "STRIPE_WEBHOOK_SECRET="+stripeWhsec)

// paymentCaddyfile returns the Caddyfile of a handler with the payment flow
// shop on the Stripe API at api, signalling to hook.
func paymentCaddyfile(api, hook string) func(int) string {
	return func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store storage
		insecure_test_clock
		payment shop stripe {
			secret_key {env.STRIPE_SECRET_KEY}
			webhook_secret {env.STRIPE_WEBHOOK_SECRET}
			api_url %s
		}
		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	respond "the shop" 200
}
`, port, api, hook)
	}
}

// payEnv is Caddy with the payment flow, in front of a fake Stripe, and the
// bot's webhook receiver.
type payEnv struct {
	t     *testing.T
	caddy *Caddy
	fake  *stripefake.Server
	hooks *hookReceiver
	base  string
	bot   *botkit.Client
}

func newPayEnv(t *testing.T) *payEnv {
	t.Helper()
	fake := stripefake.New(t, stripefake.Config{Key: stripeKey, WebhookSecret: stripeWhsec})
	hooks := newHookReceiver()
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	c := startCaddy(t, paymentCaddyfile(fake.URL, hookSrv.URL+"/hook"), stripeEnv...)
	base := c.URL + "/handoff"
	return &payEnv{t: t, caddy: c, fake: fake, hooks: hooks, base: base, bot: bot(t, base)}
}

var teaOrder = map[string]any{
	"amount": 1999, "currency": "EUR", "description": "Green tea", "orderId": "order-42",
}

// link signs a payment link for user with data.
func (p *payEnv) link(user string, data map[string]any) string {
	p.t.Helper()
	link, err := p.bot.Link("shop", refFor(user), data, 10*time.Minute)
	if err != nil {
		p.t.Fatal(err)
	}
	return link
}

// toCheckout opens link in b, follows it to the checkout page, and returns
// the session the page is for.
func (p *payEnv) toCheckout(b *browser, link string) stripefake.Session {
	p.t.Helper()
	resp, body := b.open(link)
	loc := resp.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, p.fake.URL+"/checkout/")
	if resp.StatusCode != http.StatusSeeOther || !ok {
		p.t.Fatalf("start: %d to %q: %s", resp.StatusCode, loc, body)
	}
	if resp, body := b.get(loc); resp.StatusCode != http.StatusOK {
		p.t.Fatalf("checkout page: %d: %s", resp.StatusCode, body)
	}
	return p.session(id)
}

func (p *payEnv) session(id string) stripefake.Session {
	p.t.Helper()
	for _, s := range p.fake.Sessions() {
		if s.ID == id {
			return s
		}
	}
	p.t.Fatalf("no session %s", id)
	return stripefake.Session{}
}

// payOnPage pays on the checkout page, by card ("paid") or by bank debit
// ("async"), and returns where Stripe sends the browser.
func (p *payEnv) payOnPage(b *browser, s stripefake.Session, outcome string) string {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.fake.URL+"/checkout/"+s.ID+"/pay",
		strings.NewReader(url.Values{"outcome": {outcome}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := b.do(req)
	if resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("paying: %d: %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// successURL is where Stripe sends the browser after paying s.
func successURL(s stripefake.Session) string {
	return strings.ReplaceAll(s.SuccessURL, "{CHECKOUT_SESSION_ID}", s.ID)
}

// webhook posts the fake's newest event of typ about s to the handler.
func (p *payEnv) webhook(typ string, s stripefake.Session) int {
	p.t.Helper()
	ev, err := p.fake.LastEvent(typ, s.ID)
	if err != nil {
		p.t.Fatal(err)
	}
	status, err := p.fake.Send(context.Background(), p.base+"/webhook/shop", ev)
	if err != nil {
		p.t.Fatal(err)
	}
	return status
}

// status returns the bot's view of user's flow.
func (p *payEnv) status(user string) flow.Status {
	p.t.Helper()
	st, err := p.bot.Status(context.Background(), refFor(user).Key())
	if err != nil {
		p.t.Fatalf("status: %v", err)
	}
	return st.Status
}

// drained waits until the outbox holds no delivery, so that every event
// made so far has reached the bot.
func (p *payEnv) drained() []flow.Event {
	p.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/healthz")
		if err != nil {
			p.t.Fatal(err)
		}
		var h flow.Health
		_ = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if h.Outbox.Pending == 0 {
			return p.hooks.list()
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("outbox not drained; events so far %+v", p.hooks.list())
	return nil
}

// eventTypes lists the types and errors of events, like
// "handoff.failed:cancelled".
func eventTypes(evs []flow.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		s := ev.Type
		if ev.Error != "" {
			s += ":" + ev.Error
		}
		out = append(out, s)
	}
	return out
}

func (p *payEnv) wantEvents(want ...string) {
	p.t.Helper()
	if got := eventTypes(p.drained()); !slices.Equal(got, want) {
		p.t.Errorf("events = %v; want %v", got, want)
	}
}

// verify checks user's number with the bot API and returns the result.
func (p *payEnv) verify(user, code string) payment.Result {
	p.t.Helper()
	res, err := p.bot.Verify(context.Background(), refFor(user).Key(), code)
	if err != nil {
		p.t.Fatalf("verify: %v", err)
	}
	var r payment.Result
	if err := json.Unmarshal(res.Result, &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

func TestPaymentThroughCaddy(t *testing.T) {
	p := newPayEnv(t)
	link := p.link("alice", teaOrder)
	b := newBrowser(t)

	s := p.toCheckout(b, link)
	if s.AmountTotal != 1999 || s.Currency != "eur" || s.Metadata["order_id"] != "order-42" {
		t.Errorf("session = %+v", s)
	}
	back := p.payOnPage(b, s, "paid")
	if back != successURL(s) || !strings.HasPrefix(back, p.base+"/return?") {
		t.Fatalf("Stripe sent the browser to %q", back)
	}

	// The return before the webhook: the number is shown.
	resp, body := b.get(back)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("return: %d %v", resp.StatusCode, resp.Header)
	}
	code := numberOn(t, body)
	if st := p.status("alice"); st != flow.StatusCompleted {
		t.Errorf("status = %s; want completed", st)
	}

	// The webhook after it changes nothing, and neither does its replay.
	for range 2 {
		if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
			t.Errorf("webhook after return: %d; want 200", status)
		}
	}
	p.wantEvents(flow.EventCompleted)

	res := p.verify("alice", code)
	want := payment.Result{
		Amount: 1999, Currency: "eur", OrderID: "order-42", SessionID: s.ID,
		PaymentIntentID: p.session(s.ID).PaymentIntent, CustomerEmail: "payer@example.com",
	}
	if res != want {
		t.Errorf("result = %+v; want %+v", res, want)
	}
	assertNoSecrets(t, p.caddy.Logs(), code, link, linkSecret, webhookSecret, stripeKey, stripeWhsec)
}

func TestPaymentWebhookBeforeReturn(t *testing.T) {
	p := newPayEnv(t)
	b := newBrowser(t)
	s := p.toCheckout(b, p.link("alice", teaOrder))

	// Paid, but the browser's redirect is slow: the webhook comes first.
	if err := p.fake.Pay(s.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}
	if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
		t.Fatalf("webhook: %d", status)
	}
	if st := p.status("alice"); st != flow.StatusCompleted {
		t.Fatalf("status after webhook = %s; want completed", st)
	}

	// The browser arrives and is shown the number, once.
	resp, body := b.get(successURL(s))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("return: %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)
	if _, body := b.get(successURL(s)); codePattern.MatchString(body) {
		t.Error("the number was shown twice")
	}
	if res := p.verify("alice", code); res.SessionID != s.ID {
		t.Errorf("result = %+v", res)
	}
	p.wantEvents(flow.EventCompleted)
}

func TestPaymentReturnAndWebhookTogether(t *testing.T) {
	p := newPayEnv(t)
	users := []string{"ann", "ben", "cat", "dan", "eve"}
	for _, user := range users {
		b := newBrowser(t)
		s := p.toCheckout(b, p.link(user, teaOrder))
		back := p.payOnPage(b, s, "paid")

		var wg sync.WaitGroup
		var body string
		wg.Go(func() { _, body = b.get(back) })
		wg.Go(func() {
			if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
				t.Errorf("%s: webhook: %d", user, status)
			}
		})
		wg.Wait()
		if res := p.verify(user, numberOn(t, body)); res.SessionID != s.ID {
			t.Errorf("%s: result = %+v", user, res)
		}
	}

	// One completion per flow, whichever came first.
	evs := p.drained()
	if got := eventTypes(evs); len(got) != len(users) ||
		slices.ContainsFunc(got, func(s string) bool { return s != flow.EventCompleted }) {
		t.Errorf("events = %v; want %d completions", got, len(users))
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.FlowID] {
			t.Errorf("flow %s completed twice", ev.FlowID)
		}
		seen[ev.FlowID] = true
	}
}

func TestPaymentForgedAndReplayedWebhooks(t *testing.T) {
	p := newPayEnv(t)
	b := newBrowser(t)
	s := p.toCheckout(b, p.link("alice", teaOrder))
	if err := p.fake.Pay(s.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}
	ev, _ := p.fake.LastEvent("checkout.session.completed", s.ID)
	body, now := ev.Body(), time.Now()
	live := bytes.Replace(body, []byte(`"livemode":false`), []byte(`"livemode":true`), 1)

	cases := []struct {
		name, signature string
		body            []byte
	}{
		{"unsigned", "", body},
		{"signed with another secret", stripefake.Sign(body, "whsec_forged", now), body},
		{"body changed after signing", stripefake.Sign(body, stripeWhsec, now),
			bytes.Replace(body, []byte("order-42"), []byte("order-43"), 1)},
		{"captured long ago", stripefake.Sign(body, stripeWhsec, now.Add(-10*time.Minute)), body},
		{"dated in the future", stripefake.Sign(body, stripeWhsec, now.Add(10*time.Minute)), body},
		{"live event at a test key", stripefake.Sign(live, stripeWhsec, now), live},
	}
	for _, c := range cases {
		status, err := p.fake.Post(context.Background(), p.base+"/webhook/shop", c.body, c.signature)
		if err != nil || status != http.StatusBadRequest {
			t.Errorf("%s: %d, %v; want 400", c.name, status, err)
		}
	}
	if st := p.status("alice"); st != flow.StatusPending {
		t.Fatalf("status after forged webhooks = %s; want pending", st)
	}

	// The real event, delivered twice, completes the flow once.
	for range 2 {
		if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
			t.Errorf("webhook: %d", status)
		}
	}
	p.wantEvents(flow.EventCompleted)
	assertNoSecrets(t, p.caddy.Logs(), stripeWhsec, stripeKey)
}

func TestPaymentAmountTampering(t *testing.T) {
	p := newPayEnv(t)

	// A link whose data was changed after signing is refused.
	link := p.link("alice", teaOrder)
	tampered := tamperLink(t, link, func(claims map[string]any) {
		claims["data"].(map[string]any)["amount"] = 1
	})
	if resp, _ := newBrowser(t).open(tampered); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("tampered link: %d; want 400", resp.StatusCode)
	}

	// A signed link with a malformed amount starts nothing.
	bad := p.link("bob", map[string]any{"amount": 19.99, "currency": "EUR",
		"description": "Tea", "orderId": "o"})
	if resp, body := newBrowser(t).open(bad); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, "does not work") {
		t.Errorf("bad amount: %d: %s", resp.StatusCode, body)
	}
	if n := len(p.fake.Sessions()); n != 0 {
		t.Errorf("%d sessions made for refused links", n)
	}

	// A session whose amount is not the link's fails the flow, even paid.
	b := newBrowser(t)
	s := p.toCheckout(b, link)
	p.fake.SetAmount(s.ID, 1)
	resp, body := b.get(p.payOnPage(b, s, "paid"))
	if resp.StatusCode != http.StatusBadGateway || codePattern.MatchString(body) {
		t.Errorf("return with another amount: %d: %s", resp.StatusCode, body)
	}
	if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
		t.Errorf("webhook: %d", status)
	}
	p.wantEvents(flow.EventFailed + ":" + payment.FailAmount)
}

var b64url = base64.RawURLEncoding

// tamperLink changes a link token's claims without signing it again.
func tamperLink(t *testing.T, link string, change func(map[string]any)) string {
	t.Helper()
	u, _ := url.Parse(link)
	parts := strings.Split(u.Query().Get("t"), ".")
	raw, err := b64url.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	change(claims)
	raw, _ = json.Marshal(claims)
	parts[1] = b64url.EncodeToString(raw)
	q := u.Query()
	q.Set("t", strings.Join(parts, "."))
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPaymentReturnWithAnotherFlowsSession(t *testing.T) {
	p := newPayEnv(t)
	alice, bob := newBrowser(t), newBrowser(t)
	sa := p.toCheckout(alice, p.link("alice", teaOrder))
	sb := p.toCheckout(bob, p.link("bob", teaOrder))
	bobBack := p.payOnPage(bob, sb, "paid")

	// Alice's flow, with Bob's paid session: refused.
	u, _ := url.Parse(successURL(sa))
	q := u.Query()
	q.Set("session_id", sb.ID)
	u.RawQuery = q.Encode()
	if resp, body := alice.get(u.String()); resp.StatusCode != http.StatusBadRequest ||
		codePattern.MatchString(body) {
		t.Errorf("alice's return with bob's session: %d: %s", resp.StatusCode, body)
	}
	// Bob's return URL, in Alice's browser: not hers.
	if resp, _ := alice.get(bobBack); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob's return in alice's browser: %d; want 403", resp.StatusCode)
	}
	if st := p.status("alice"); st != flow.StatusPending {
		t.Errorf("alice's status = %s; want pending", st)
	}

	// Bob finishes as usual.
	_, body := bob.get(bobBack)
	if res := p.verify("bob", numberOn(t, body)); res.SessionID != sb.ID {
		t.Errorf("bob's result = %+v", res)
	}
}

func TestPaymentCancel(t *testing.T) {
	p := newPayEnv(t)
	b := newBrowser(t)
	s := p.toCheckout(b, p.link("alice", teaOrder))

	// The checkout page's back link.
	resp, _ := b.get(p.fake.URL + "/checkout/" + s.ID + "/cancel")
	back := resp.Header.Get("Location")
	if !strings.HasPrefix(back, p.base+"/return?") || !strings.Contains(back, "cancel=1") {
		t.Fatalf("back link goes to %q", back)
	}
	resp, body := b.get(back)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Payment cancelled") {
		t.Errorf("cancel page: %d: %s", resp.StatusCode, body)
	}

	// The session was expired: it cannot be paid any more.
	if got := p.session(s.ID); got.Status != "expired" {
		t.Errorf("session after cancel is %s; want expired", got.Status)
	}
	if status := p.webhook("checkout.session.expired", s); status != http.StatusOK {
		t.Errorf("expired webhook: %d", status)
	}
	if resp, _ := b.open(p.link("alice", teaOrder)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a new link after cancelling: %d; want 303", resp.StatusCode)
	}
	p.wantEvents(flow.EventFailed + ":" + payment.FailCancelled)
}

func TestPaymentSessionExpiry(t *testing.T) {
	p := newPayEnv(t)
	b := newBrowser(t)
	link := p.link("alice", teaOrder)
	first := p.toCheckout(b, link)
	if left := time.Until(first.ExpiresAt); left < 55*time.Minute || left > time.Hour {
		t.Errorf("session ends in %v; want shortly before the flow's hour", left)
	}

	// Stripe expires the session; the flow lives on.
	if err := p.fake.Expire(first.ID); err != nil {
		t.Fatal(err)
	}
	if status := p.webhook("checkout.session.expired", first); status != http.StatusOK {
		t.Errorf("expired webhook: %d", status)
	}
	if st := p.status("alice"); st != flow.StatusPending {
		t.Errorf("status after session expiry = %s; want pending", st)
	}

	// Opening the link again gets a new session, which can be paid.
	second := p.toCheckout(b, link)
	if second.ID == first.ID || second.IdempotencyKey == first.IdempotencyKey {
		t.Fatalf("second session %s (key %q) after %s (key %q)", second.ID,
			second.IdempotencyKey, first.ID, first.IdempotencyKey)
	}
	_, body := b.get(p.payOnPage(b, second, "paid"))
	if res := p.verify("alice", numberOn(t, body)); res.SessionID != second.ID {
		t.Errorf("result = %+v; want session %s", res, second.ID)
	}

	// A flow abandoned at the checkout expires, and the bot is told.
	p.toCheckout(newBrowser(t), p.link("bob", teaOrder))
	advanceClock(t, p.base, 0, 61*time.Minute)
	p.hooks.waitEvents(t, 2)
	p.wantEvents(flow.EventCompleted, flow.EventExpired)
}

func TestPaymentAfterStripeServerError(t *testing.T) {
	p := newPayEnv(t)
	b := newBrowser(t)
	link := p.link("alice", teaOrder)

	// Stripe fails the creation, and keeps the failure under its key: the
	// user sees an error page, and the flow stays pending.
	p.fake.FailCreates(1)
	if resp, body := b.open(link); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("click while Stripe fails: %d: %s", resp.StatusCode, body)
	}
	if st := p.status("alice"); st != flow.StatusPending {
		t.Errorf("status after the failure = %s; want pending", st)
	}

	// The next click moves past the spent key, and the session is paid.
	s := p.toCheckout(b, link)
	if !strings.HasSuffix(s.IdempotencyKey, "-r1") {
		t.Errorf("session made under %q; want the chain's second key", s.IdempotencyKey)
	}
	_, body := b.get(p.payOnPage(b, s, "paid"))
	if res := p.verify("alice", numberOn(t, body)); res.SessionID != s.ID {
		t.Errorf("result = %+v; want session %s", res, s.ID)
	}
	if n := len(p.fake.Sessions()); n != 1 {
		t.Errorf("%d sessions made; want 1", n)
	}
}

func TestPaymentAsync(t *testing.T) {
	for _, ok := range []bool{true, false} {
		t.Run(map[bool]string{true: "succeeded", false: "failed"}[ok], func(t *testing.T) {
			p := newPayEnv(t)
			b := newBrowser(t)
			s := p.toCheckout(b, p.link("alice", teaOrder))

			// A bank debit: complete, but the money is not there yet.
			back := p.payOnPage(b, s, "async")
			resp, body := b.get(back)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Almost there") ||
				!strings.Contains(body, `http-equiv="refresh"`) {
				t.Fatalf("return while processing: %d: %s", resp.StatusCode, body)
			}
			if status := p.webhook("checkout.session.completed", s); status != http.StatusOK {
				t.Errorf("completed webhook: %d", status)
			}
			if st := p.status("alice"); st != flow.StatusPending {
				t.Errorf("status while processing = %s; want pending", st)
			}

			// The debit settles; Stripe says so.
			if err := p.fake.SettleAsync(s.ID, ok); err != nil {
				t.Fatal(err)
			}
			typ := "checkout.session.async_payment_failed"
			if ok {
				typ = "checkout.session.async_payment_succeeded"
			}
			if status := p.webhook(typ, s); status != http.StatusOK {
				t.Errorf("%s webhook: %d", typ, status)
			}

			// The waiting page, refreshing, shows the outcome.
			resp, body = b.get(back)
			if !ok {
				// A declined payment is an answer to show, not an error.
				if resp.StatusCode != http.StatusOK || codePattern.MatchString(body) {
					t.Errorf("page after the failure: %d: %s", resp.StatusCode, body)
				}
				p.wantEvents(flow.EventFailed + ":" + payment.FailPayment)
				return
			}
			if res := p.verify("alice", numberOn(t, body)); res.SessionID != s.ID {
				t.Errorf("result = %+v", res)
			}
			p.wantEvents(flow.EventCompleted)
		})
	}
}

func TestPaymentConfigRefusals(t *testing.T) {
	cases := map[string]struct{ env, block, want string }{
		"publishable key": {"STRIPE_SECRET_KEY=pk_test_abc", "", "publishable key"},
		"no webhook secret": {"STRIPE_WEBHOOK_SECRET=", "",
			"webhook_secret: resolving secret"},
		"swapped secrets": {"STRIPE_WEBHOOK_SECRET=" + stripeKey, "", "whsec_"},
		"short ttl":       {"", "\t\t\tttl 20m\n", "ttl must be"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cf := fmt.Sprintf(`{
	storage file_system %s
}
http://127.0.0.1:1 {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		payment shop stripe {
			secret_key {env.STRIPE_SECRET_KEY}
			webhook_secret {env.STRIPE_WEBHOOK_SECRET}
%s		}
	}
}
`, filepath.Join(dir, "data"), c.block)
			file := filepath.Join(dir, "Caddyfile")
			if err := os.WriteFile(file, []byte(cf), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(caddyBin, "validate", "--config", file, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir)
			cmd.Env = append(cmd.Env, stripeEnv...)
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("validate: %v; want an error with %q:\n%s", err, c.want, out)
			}
			if strings.Contains(string(out), stripeKey) {
				t.Error("the error quotes the secret key")
			}
		})
	}
}
