package stripefake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

const key = "sk_test_fake0123456789"

func client(fake *stripefake.Server, key string) *stripe.Client {
	return stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(fake.URL),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(0),
	})))
}

func params(amount int64, idem string) *stripe.CheckoutSessionCreateParams {
	p := &stripe.CheckoutSessionCreateParams{
		Mode: stripe.String("payment"),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency: stripe.String("eur"), UnitAmount: stripe.Int64(amount),
				ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{
					Name: stripe.String("Tea"),
				},
			},
		}},
		SuccessURL: stripe.String("https://shop.example/ok?s={CHECKOUT_SESSION_ID}"),
	}
	if idem != "" {
		p.SetIdempotencyKey(idem)
	}
	return p
}

// code returns the Stripe error's type and code, or "" for no error.
func code(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return string(se.Type) + "/" + string(se.Code)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestIdempotencyKeys(t *testing.T) {
	fake := stripefake.New(t, stripefake.Config{Key: key})
	c, ctx := client(fake, key), context.Background()

	a, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k1"))
	if err != nil || b.ID != a.ID {
		t.Errorf("same key, same request: %v, %v; want the first session replayed", b.ID, err)
	}
	_, err = c.V1CheckoutSessions.Create(ctx, params(2999, "k1"))
	if got := code(err); got != "idempotency_error/" {
		t.Errorf("same key, other request: %q; want idempotency_error", got)
	}

	// A parameter error is not kept: the corrected request runs.
	_, err = c.V1CheckoutSessions.Create(ctx, params(10, "k2"))
	if got := code(err); got != "invalid_request_error/amount_too_small" {
		t.Errorf("too small: %q", got)
	}
	if _, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k2")); err != nil {
		t.Errorf("corrected request under the same key: %v", err)
	}
	if n := len(fake.Sessions()); n != 2 {
		t.Errorf("%d sessions; want 2", n)
	}
}

func TestSessionRules(t *testing.T) {
	now := time.Now()
	fake := stripefake.New(t, stripefake.Config{Key: key, Now: func() time.Time { return now }})
	c, ctx := client(fake, key), context.Background()

	for name, change := range map[string]func(*stripe.CheckoutSessionCreateParams){
		"ends too soon": func(p *stripe.CheckoutSessionCreateParams) {
			p.ExpiresAt = stripe.Int64(now.Add(29 * time.Minute).Unix())
		},
		"ends too late": func(p *stripe.CheckoutSessionCreateParams) {
			p.ExpiresAt = stripe.Int64(now.Add(25 * time.Hour).Unix())
		},
		"unknown parameter": func(p *stripe.CheckoutSessionCreateParams) {
			p.AddExtra("colour", "blue")
		},
		"no mode":        func(p *stripe.CheckoutSessionCreateParams) { p.Mode = nil },
		"no success URL": func(p *stripe.CheckoutSessionCreateParams) { p.SuccessURL = nil },
	} {
		p := params(1999, "")
		change(p)
		if _, err := c.V1CheckoutSessions.Create(ctx, p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	if _, err := client(fake, "sk_test_other").V1CheckoutSessions.Create(ctx, params(1999, "")); err == nil {
		t.Error("another key: accepted")
	}
}

func TestSessionLife(t *testing.T) {
	fake := stripefake.New(t, stripefake.Config{Key: key})
	c, ctx := client(fake, key), context.Background()
	s, err := c.V1CheckoutSessions.Create(ctx, params(1999, ""))
	if err != nil || s.Status != "open" || s.URL == "" {
		t.Fatalf("new session: %+v, %v", s, err)
	}

	if err := fake.Pay(s.ID, stripefake.Payment{Async: true}); err != nil {
		t.Fatal(err)
	}
	p := &stripe.CheckoutSessionRetrieveParams{}
	p.AddExpand("payment_intent")
	got, err := c.V1CheckoutSessions.Retrieve(ctx, s.ID, p)
	if err != nil || got.Status != "complete" || got.PaymentStatus != "unpaid" || got.URL != "" ||
		got.PaymentIntent == nil || got.PaymentIntent.Status != "processing" {
		t.Errorf("after an async payment: %+v, %v", got, err)
	}
	if _, err := c.V1CheckoutSessions.Expire(ctx, s.ID, nil); err == nil {
		t.Error("expired a complete session")
	}

	// An open session expires on its own at its end.
	s, _ = c.V1CheckoutSessions.Create(ctx, params(1999, ""))
	fake.Advance(25 * time.Hour)
	got, err = c.V1CheckoutSessions.Retrieve(ctx, s.ID, nil)
	if err != nil || got.Status != "expired" {
		t.Errorf("after its end: %+v, %v", got, err)
	}
	if _, err := fake.LastEvent("checkout.session.expired", s.ID); err != nil {
		t.Error(err)
	}
}

// replayed returns the status of a Stripe error and whether it was a
// replay of an idempotent answer.
func replayed(err error) (status int, replay bool) {
	var se *stripe.Error
	if !errors.As(err, &se) || se.LastResponse == nil {
		return 0, false
	}
	return se.HTTPStatusCode, se.LastResponse.Header.Get("Idempotent-Replayed") == "true"
}

func TestFailCreatesIsKeptUnderTheKey(t *testing.T) {
	fake := stripefake.New(t, stripefake.Config{Key: key})
	c, ctx := client(fake, key), context.Background()
	fake.FailCreates(1)

	// The failure is answered once, then replayed under its key.
	_, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k1"))
	if status, replay := replayed(err); status != 500 || replay || code(err) != "api_error/" {
		t.Fatalf("first creation: %v (status %d, replayed %v); want a fresh 500", err, status,
			replay)
	}
	_, err = c.V1CheckoutSessions.Create(ctx, params(1999, "k1"))
	if status, replay := replayed(err); status != 500 || !replay {
		t.Errorf("same key again: %v (status %d, replayed %v); want the 500 replayed", err,
			status, replay)
	}
	if n := fake.FailsLeft(); n != 0 {
		t.Errorf("%d failures left; want 0: a replay does not count", n)
	}

	// Another key runs, and is replayed in turn.
	a, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k2"))
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	b, err := c.V1CheckoutSessions.Create(ctx, params(1999, "k2"))
	if err != nil || b.ID != a.ID || b.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same key after success: %v, %v; want %s replayed", b.ID, err, a.ID)
	}
	if n := len(fake.Sessions()); n != 1 {
		t.Errorf("%d sessions; want 1: a failed creation makes none", n)
	}
}

func TestFailCreatesWithoutKey(t *testing.T) {
	fake := stripefake.New(t, stripefake.Config{Key: key})
	c, ctx := client(fake, key), context.Background()
	fake.FailCreates(2)

	for i := range 2 {
		if _, err := c.V1CheckoutSessions.Create(ctx, params(1999, "")); code(err) != "api_error/" {
			t.Errorf("creation %d: %v; want api_error", i, err)
		}
	}
	if _, err := c.V1CheckoutSessions.Create(ctx, params(1999, "")); err != nil {
		t.Errorf("creation after the failures: %v", err)
	}

	// FailCreates(0) ends the failures still to come.
	fake.FailCreates(3)
	fake.FailCreates(0)
	if _, err := c.V1CheckoutSessions.Create(ctx, params(1999, "")); err != nil {
		t.Errorf("creation after FailCreates(0): %v", err)
	}
}
