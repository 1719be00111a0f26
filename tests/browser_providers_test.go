package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

// newOAuthShop starts Caddy with the oauth flow idp at the mockoidc
// provider, in front of the shop.
func newOAuthShop(t *testing.T, idp *mockIdP) *shopEnv {
	t.Helper()
	shop := shopSite(t)
	env := append(slices.Clone(botEnv), "IDP_CLIENT_SECRET="+idpClientSecret)
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		%s
		oauth idp {
			issuer %s
			client_id idp-client
			client_secret {env.IDP_CLIENT_SECRET}
			scopes openid profile email
		}
	}
	reverse_proxy %s
}
`, port, brandPages, idp.issuer(), strings.TrimPrefix(shop.URL, "http://"))
	}, env...)
	idp.redirectURI = c.URL + "/handoff/callback"
	base := c.URL + "/handoff"
	return &shopEnv{caddy: c, base: base, bot: bot(t, base)}
}

// callbackVisited returns the last callback URL the tab was sent to.
func (tb *tab) callbackVisited() string {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for i := len(tb.visited) - 1; i >= 0; i-- {
		if strings.Contains(tb.visited[i], "/handoff/callback?") {
			return tb.visited[i]
		}
	}
	tb.t.Fatalf("no callback among %q", tb.visited)
	return ""
}

func TestBrowserOAuthFlow(t *testing.T) {
	idp := newMockIdP(t, "idp-client", idpClientSecret).start("127.0.0.1:0")
	s := newOAuthShop(t, idp)
	ctx := context.Background()

	// Dave's sign-in comes back while the provider cannot give its keys:
	// try again later; reloading once they are back signs him in.
	idp.set(func(p *mockIdP) { p.keysDown = true })
	link, _ := s.bot.Link("idp", refFor("dave"), nil, 10*time.Minute)
	tb := newTab(t)
	tb.open(link)
	resp := tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusBadGateway, heading: "Please try again"})
	tb.shot("unavailable")
	idp.set(func(p *mockIdP) { p.keysDown = false })
	resp = tb.reload()
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "You're signed in"})
	if _, err := s.bot.Verify(ctx, refFor("dave").Key(), tb.number()); err != nil {
		t.Errorf("verify after reload: %v", err)
	}

	// Alice signs in: the link, Continue, the provider, and the number.
	alice := refFor("alice")
	link, _ = s.bot.Link("idp", alice, nil, 10*time.Minute)
	tb = newTab(t)
	resp = tb.open(link)
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Sign in to continue"})
	if got := tb.text("main button"); got != "Continue to sign-in" {
		t.Errorf("button %q", got)
	}
	tb.shot("continue-oauth")

	resp = tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "You're signed in"})
	tb.shot("finish-oauth")
	res, err := s.bot.Verify(ctx, alice.Key(), tb.number())
	if err != nil || !strings.Contains(string(res.Result), `"accessToken"`) {
		t.Fatalf("verify: %+v, %v", res, err)
	}

	// The callback again, from the history: refused, with no number.
	resp = tb.open(tb.callbackVisited())
	tb.checkPage(resp, pageWant{status: http.StatusConflict, heading: "Already finished"})

	// Bob declines at the provider.
	idp.set(func(p *mockIdP) { p.decline = true })
	link, _ = s.bot.Link("idp", refFor("bob"), nil, 10*time.Minute)
	tb = newTab(t)
	tb.open(link)
	resp = tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusForbidden, heading: "Sign-in was cancelled"})
	tb.shot("declined")
	idp.set(func(p *mockIdP) { p.decline = false })

	// Carol's callback, opened in a browser that did not start her flow.
	link, _ = s.bot.Link("idp", refFor("carol"), nil, 10*time.Minute)
	callback := newSignInBrowser(t).reachCallback(link)
	tb = newTab(t)
	resp = tb.open(callback)
	tb.checkPage(resp, pageWant{status: http.StatusForbidden, heading: "Open the link from your chat"})
	tb.shot("not-bound")
}

// newPaymentShop starts Caddy with the payment flow shop on the Stripe fake.
func newPaymentShop(t *testing.T) *payEnv {
	t.Helper()
	fake := stripefake.New(t, stripefake.Config{Key: stripeKey, WebhookSecret: stripeWhsec})
	hooks := newHookReceiver()
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	shop := shopSite(t)
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		%s
		payment shop stripe {
			secret_key {env.STRIPE_SECRET_KEY}
			webhook_secret {env.STRIPE_WEBHOOK_SECRET}
			api_url %s
		}
		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	reverse_proxy %s
}
`, port, brandPages, fake.URL, hookSrv.URL+"/hook", strings.TrimPrefix(shop.URL, "http://"))
	}, stripeEnv...)
	base := c.URL + "/handoff"
	return &payEnv{t: t, caddy: c, fake: fake, hooks: hooks, base: base, bot: bot(t, base)}
}

// lastSession returns the checkout session made last.
func lastSession(t *testing.T, p *payEnv) stripefake.Session {
	t.Helper()
	s, ok := p.fake.Last()
	if !ok {
		t.Fatal("no checkout session")
	}
	return s
}

func TestBrowserPaymentFlow(t *testing.T) {
	p := newPaymentShop(t)

	// Alice pays by bank debit: the page waits until the money is there.
	tb := newTab(t)
	resp := tb.open(p.link("alice", teaOrder))
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Continue to payment"})
	tb.shot("continue-payment")
	tb.click("main button")
	if !strings.HasPrefix(tb.url().String(), p.fake.URL+"/checkout/") {
		t.Fatalf("not at the checkout: %s", tb.url())
	}
	resp = tb.click(`input[value="async"] ~ button`)
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Almost there"})
	if !eval[bool](tb, `!!document.querySelector('meta[http-equiv="refresh"]')`) {
		t.Error("the waiting page does not refresh by itself")
	}
	tb.shot("pending")

	s := lastSession(t, p)
	if err := p.fake.SettleAsync(s.ID, true); err != nil {
		t.Fatal(err)
	}
	if status := p.webhook("checkout.session.async_payment_succeeded", s); status != http.StatusOK {
		t.Fatalf("webhook: %d", status)
	}
	resp = tb.reload()
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Payment complete"})
	if res := p.verify("alice", tb.number()); res.SessionID != s.ID {
		t.Errorf("result = %+v", res)
	}

	// Bob goes back from the checkout.
	tb = newTab(t)
	tb.open(p.link("bob", teaOrder))
	tb.click("main button")
	resp = tb.click(`a[href$="/cancel"]`)
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Payment cancelled"})
	tb.shot("cancelled")

	// Carol gets a newer link while the checkout of the older one is open;
	// paying the older one is refused.
	tb = newTab(t)
	tb.open(p.link("carol", teaOrder))
	tb.click("main button")
	older := tb.url().String()
	tb.open(p.link("carol", teaOrder))
	tb.click("main button")
	tb.open(older)
	resp = tb.click(`input[value="paid"] ~ button`)
	tb.checkPage(resp, pageWant{status: http.StatusGone, heading: "A newer link was sent"})
	tb.shot("superseded")
	if st := p.status("carol"); st != flow.StatusPending {
		t.Errorf("carol's newer flow is %s; want pending", st)
	}
}
