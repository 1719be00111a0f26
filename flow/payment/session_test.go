package payment_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

func TestNewChecksKeys(t *testing.T) {
	for _, key := range []string{"sk_test_x", "sk_live_x", "rk_test_x", "rk_live_x"} {
		p, err := payment.New(payment.Config{SecretKey: key, WebhookSecret: whsec})
		if err != nil {
			t.Errorf("%s: %v", key[:8], err)
			continue
		}
		if live := strings.Contains(key, "live"); p.Live() != live {
			t.Errorf("%s: live = %v; want %v", key[:8], p.Live(), live)
		}
	}

	bad := []payment.Config{
		{SecretKey: "pk_test_x", WebhookSecret: whsec},
		{SecretKey: "", WebhookSecret: whsec},
		{SecretKey: "whsec_x", WebhookSecret: whsec},
		{SecretKey: testKey, WebhookSecret: ""},
		{SecretKey: testKey, WebhookSecret: "sk_test_swapped"},
		{SecretKey: testKey, WebhookSecret: whsec, APIURL: "ftp://x"},
		{SecretKey: testKey, WebhookSecret: whsec, APIURL: "/relative"},
	}
	for i, cfg := range bad {
		_, err := payment.New(cfg)
		if err == nil {
			t.Errorf("config %d accepted", i)
			continue
		}
		if strings.Contains(err.Error(), "_x") || strings.Contains(err.Error(), "swapped") {
			t.Errorf("config %d: error quotes the key: %v", i, err)
		}
	}
}

func TestBeginMakesTheSession(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	step := fx.begin(f)

	s := fx.session()
	if step.Redirect != fx.fake.URL+"/checkout/"+s.ID {
		t.Errorf("redirect = %q; want the checkout page of %s", step.Redirect, s.ID)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"amount", s.AmountTotal, int64(1999)},
		{"currency", s.Currency, "eur"},
		{"client reference", s.ClientReferenceID, "flow-a"},
		{"handle", s.Metadata["handoff_handle"], f.Handle},
		{"flow", s.Metadata["handoff_flow"], "shop"},
		{"flow id", s.Metadata["handoff_flow_id"], "flow-a"},
		{"order", s.Metadata["order_id"], "o-1"},
		{"intent order", s.IntentMetadata["order_id"], "o-1"},
		{"intent description", s.IntentDescription, "Tea"},
		{"adaptive pricing", s.AdaptivePricing, false},
		{"success URL", s.SuccessURL, "https://shop.example/handoff/return?flow=" + f.Handle +
			"&session_id={CHECKOUT_SESSION_ID}"},
		{"cancel URL", s.CancelURL, "https://shop.example/handoff/return?flow=" + f.Handle + "&cancel=1"},
		{"ends before the flow", s.ExpiresAt, f.Deadline.Add(-2 * time.Minute)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if s.IdempotencyKey == "" || !strings.Contains(s.IdempotencyKey, "flow-a") {
		t.Errorf("idempotency key = %q; want one from the flow ID", s.IdempotencyKey)
	}
}

func TestSecondClickGetsTheSameSession(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")

	// Two clicks at once, neither seeing the other's state.
	steps := fx.clicksAtOnce(f)
	if t.Failed() {
		return
	}
	if steps[0].Redirect != steps[1].Redirect {
		t.Errorf("two clicks, two sessions: %q, %q", steps[0].Redirect, steps[1].Redirect)
	}
	if n := len(fx.fake.Sessions()); n != 1 {
		t.Errorf("%d sessions made; want 1", n)
	}
}

func TestBeginAgain(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	first := fx.begin(f)
	s := fx.session()

	// The same browser opening the link again goes back to the session.
	again := fx.begin(f)
	if again.Redirect != first.Redirect || again.State != nil {
		t.Errorf("second begin = %+v; want the open session, state unchanged", again)
	}

	// A session that expired gets a new one, under a new key.
	if err := fx.fake.Expire(s.ID); err != nil {
		t.Fatal(err)
	}
	renewed := fx.begin(f)
	n := fx.session()
	if n.ID == s.ID || n.IdempotencyKey == s.IdempotencyKey || renewed.Redirect == first.Redirect {
		t.Fatalf("renewed session %s (key %q) after %s (key %q)", n.ID, n.IdempotencyKey, s.ID,
			s.IdempotencyKey)
	}

	// A paid session sends the browser to the return, which settles it.
	if err := fx.fake.Pay(n.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}
	paid := fx.begin(f)
	want := "https://shop.example/handoff/return?flow=" + f.Handle + "&session_id=" + n.ID
	if paid.Redirect != want {
		t.Errorf("begin after paying = %q; want %q", paid.Redirect, want)
	}
}

func TestLateBeginMakesNoSession(t *testing.T) {
	fx := newFixture(t, testKey)

	// Stripe keeps a session open at least 30 minutes: a flow ending
	// sooner gets none, so that no payment can arrive after it ended.
	f := fx.newFlow("flow-a")
	f.Deadline = fx.clock.Now().Add(32 * time.Minute)
	_, err := fx.p.Begin(context.Background(), f)
	if !errors.Is(err, payment.ErrTooLate) || !errors.Is(err, flow.ErrExpired) {
		t.Errorf("begin 32 minutes before the end: %v; want ErrTooLate", err)
	}
	if n := len(fx.fake.Sessions()); n != 0 {
		t.Errorf("%d sessions made; want none", n)
	}

	// A flow living longer than a day gets a session of at most a day.
	g := fx.newFlow("flow-b")
	g.Deadline = fx.clock.Now().Add(48 * time.Hour)
	fx.begin(g)
	if s := fx.session(); s.ExpiresAt.Sub(s.Created) > 24*time.Hour {
		t.Errorf("session lives %v; want at most 24h", s.ExpiresAt.Sub(s.Created))
	}
}

func TestBeginErrorsAreRedacted(t *testing.T) {
	fx := newFixture(t, testKey)
	other, err := payment.New(payment.Config{
		Name: "shop", SecretKey: "sk_test_wrongwrongwrong", WebhookSecret: whsec, APIURL: fx.fake.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Begin(context.Background(), fx.newFlow("flow-a"))
	if !errors.Is(err, flow.ErrProvider) {
		t.Fatalf("begin with a key the API refuses: %v; want ErrProvider", err)
	}
	if msg := err.Error(); strings.Contains(msg, "Invalid API Key") || strings.Contains(msg, "wrongwrong") {
		t.Errorf("error quotes Stripe's message or the key: %s", msg)
	}

	// A retrieval of an unknown session names the error, not its message.
	f := fx.newFlow("flow-b")
	f.State = []byte(`{"session":"cs_test_gone"}`)
	_, err = fx.p.Begin(context.Background(), f)
	if !errors.Is(err, flow.ErrProvider) || !strings.Contains(err.Error(), "resource_missing") ||
		strings.Contains(err.Error(), "No such") {
		t.Errorf("retrieving an unknown session: %v", err)
	}
}

func TestAnswersAreReadThroughALimit(t *testing.T) {
	big := strings.Repeat(" ", 2<<20)
	srv := newRawServer(t, `{"id":"cs_test_big","url":"https://x"`+big+`}`)
	p, err := payment.New(payment.Config{SecretKey: testKey, WebhookSecret: whsec, APIURL: srv})
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, testKey)
	_, err = p.Begin(context.Background(), fx.newFlow("flow-a"))
	if !errors.Is(err, flow.ErrProvider) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}
}

func TestSessionEndsByTheTimeTheFlowHasLeft(t *testing.T) {
	fx := newFixture(t, testKey)

	// The engine's clock runs three hours ahead of Stripe's (as the
	// insecure test clock may): the session must end by the time the flow
	// has left, not by the engine's deadline read on Stripe's clock.
	f := fx.newFlow("flow-a")
	f.Now = fx.clock.Now().Add(3 * time.Hour)
	f.Deadline = f.Now.Add(time.Hour)
	fx.begin(f)
	s := fx.session()
	if left := s.ExpiresAt.Sub(fx.clock.Now()); left > time.Hour || left < 50*time.Minute {
		t.Errorf("session ends in %v; want a little under the hour the flow has left", left)
	}
}

// keyChain is how many idempotency keys the provider goes through for one
// session.
const keyChain = 5

// failedBegin begins f and wants a provider error.
func (fx *fixture) failedBegin(f *flow.Flow) error {
	fx.t.Helper()
	step, err := fx.p.Begin(context.Background(), f)
	if !errors.Is(err, flow.ErrProvider) {
		fx.t.Fatalf("begin = %+v, %v; want a provider error", step, err)
	}
	return err
}

func TestServerErrorSpendsOnlyItsKey(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.fake.FailCreates(1)

	// Stripe fails, and keeps the failure under the key: the user sees an
	// error page.
	if err := fx.failedBegin(f); !strings.Contains(err.Error(), "status 500") {
		t.Errorf("first begin: %v; want Stripe's 500", err)
	}
	if f.State != nil {
		t.Fatalf("state after a failure = %s; want none", f.State)
	}

	// The next click gets the failure replayed, and moves to the next key.
	first := fx.begin(f)
	s := fx.session()
	if !strings.HasSuffix(s.IdempotencyKey, "-r1") {
		t.Errorf("session made under %q; want the chain's second key", s.IdempotencyKey)
	}
	if !strings.Contains(fx.logs.String(), "key spent by a server error") {
		t.Errorf("spent key not logged: %s", fx.logs.String())
	}

	// Later clicks, with the state or without it, get the same session.
	g := *f
	g.State = nil
	for name, h := range map[string]*flow.Flow{"with state": f, "without state": &g} {
		step, err := fx.p.Begin(context.Background(), h)
		if err != nil || step.Redirect != first.Redirect {
			t.Errorf("third begin %s = %+v, %v; want %s", name, step, err, first.Redirect)
		}
	}
	if n := len(fx.fake.Sessions()); n != 1 {
		t.Errorf("%d sessions made; want 1", n)
	}
}

func TestReplayedClientErrorKeepsItsKey(t *testing.T) {
	rs := newReplayServer(t, http.StatusBadRequest)
	p, err := payment.New(payment.Config{SecretKey: testKey, WebhookSecret: whsec, APIURL: rs.URL})
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, testKey)

	_, err = p.Begin(context.Background(), fx.newFlow("flow-a"))
	if !errors.Is(err, flow.ErrProvider) || !strings.Contains(err.Error(), "status 400") {
		t.Errorf("begin: %v; want Stripe's 400", err)
	}
	if keys := rs.Keys(); len(keys) != 1 {
		t.Errorf("asked under %q; want one key: a 4xx spends no key", keys)
	}
}

func TestKeyChainIsBounded(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.fake.FailCreates(keyChain + 3)

	// Each click spends one more key of the chain, until all are spent.
	for i := range keyChain {
		fx.failedBegin(f)
		if left := fx.fake.FailsLeft(); left != keyChain+3-(i+1) {
			t.Fatalf("after click %d: %d failures left; want %d", i, left, keyChain+3-(i+1))
		}
	}

	// Then clicks fail on replays alone, asking under no further key.
	fx.failedBegin(f)
	if left := fx.fake.FailsLeft(); left != 3 {
		t.Errorf("after the chain: %d failures left; want 3", left)
	}
	if n := len(fx.fake.Sessions()); n != 0 {
		t.Errorf("%d sessions made; want none", n)
	}
}

func TestKeyChainIsTheFlows(t *testing.T) {
	rs := newReplayServer(t, http.StatusInternalServerError)
	p, err := payment.New(payment.Config{SecretKey: testKey, WebhookSecret: whsec, APIURL: rs.URL})
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")

	// Every key replays a 500: one click walks the whole chain and stops.
	if _, err := p.Begin(context.Background(), f); !errors.Is(err, flow.ErrProvider) {
		t.Fatalf("begin: %v; want a provider error", err)
	}
	keys := rs.Keys()
	want := []string{"handoff-checkout-flow-a-0", "handoff-checkout-flow-a-0-r1",
		"handoff-checkout-flow-a-0-r2", "handoff-checkout-flow-a-0-r3",
		"handoff-checkout-flow-a-0-r4"}
	if !slices.Equal(keys, want) {
		t.Errorf("asked under %q; want %q", keys, want)
	}

	// Another click walks the same chain.
	if _, err := p.Begin(context.Background(), f); err == nil {
		t.Fatal("second begin succeeded")
	}
	if again := rs.Keys(); !slices.Equal(again, keys) {
		t.Errorf("second click asked under %q; want %q", again, keys)
	}
}

func TestClicksAfterASpentKeyGetTheSameSession(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.fake.FailCreates(1)
	fx.failedBegin(f)

	// Two clicks at once, both past the spent key.
	steps := fx.clicksAtOnce(f)
	if t.Failed() {
		return
	}
	if steps[0].Redirect != steps[1].Redirect || !bytes.Equal(steps[0].State, steps[1].State) {
		t.Errorf("two clicks, two sessions: %q, %q", steps[0].Redirect, steps[1].Redirect)
	}
	if n := len(fx.fake.Sessions()); n != 1 {
		t.Errorf("%d sessions made; want 1", n)
	}
}

// clicksAtOnce begins f twice at once, neither click seeing the other's
// state, and returns both steps.
func (fx *fixture) clicksAtOnce(f *flow.Flow) []*flow.Step {
	var wg sync.WaitGroup
	steps := make([]*flow.Step, 2)
	for i := range steps {
		wg.Go(func() {
			g := *f
			s, err := fx.p.Begin(context.Background(), &g)
			if err != nil {
				fx.t.Errorf("begin %d: %v", i, err)
				return
			}
			steps[i] = s
		})
	}
	wg.Wait()
	return steps
}
