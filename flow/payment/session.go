package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Metadata keys on the Checkout Session and its payment intent.
const (
	metaHandle = "handoff_handle"
	metaFlow   = "handoff_flow"
	metaFlowID = "handoff_flow_id"
	metaOrder  = "order_id"
)

// Bounds of a Checkout Session's life, as Stripe sets them, and how it is
// fitted into its flow's.
const (
	minSessionLife = 30 * time.Minute
	maxSessionLife = 24 * time.Hour
	// sessionMargin ends a session this long before its flow, so that the
	// last payment's webhook still finds the flow pending.
	sessionMargin = 2 * time.Minute
	// sessionGrid rounds the end of a session that cannot last as long as
	// its flow.
	sessionGrid = 10 * time.Minute
)

// keyChain is how many idempotency keys the creation of one session may go
// through: the first, and one more for each server error Stripe replays.
const keyChain = 5

// state is what the provider keeps, sealed, in the flow record.
type state struct {
	// Session is the ID of the flow's current Checkout Session.
	Session string `json:"session"`
	// Attempt counts the sessions made before this one. It is part of the
	// idempotency key, so that a session replacing an expired one is new.
	Attempt int `json:"attempt"`
}

func readState(b []byte) (state, error) {
	var st state
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decoding payment state: %w", err)
	}
	return st, nil
}

// Begin implements flow.Provider. The browser goes to the flow's Checkout
// Session, made now if the flow has none yet or its last one expired. A
// flow too close to its end for a session, which Stripe keeps open at
// least 30 minutes, gets none.
func (s *Stripe) Begin(ctx context.Context, f *flow.Flow) (*flow.Step, error) {
	d, err := ParseData(f.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", flow.ErrBadRequest, err)
	}
	st, err := readState(f.State)
	if err != nil {
		return nil, err
	}

	if st.Session != "" {
		step, err := s.resume(ctx, f, st.Session)
		if step != nil || err != nil {
			return step, err
		}
		st.Attempt++
	}
	return s.create(ctx, f, d, st)
}

// resume returns where a browser that opens the link again goes: to the
// flow's session while it is open, to the return once it is complete,
// which settles the flow. It returns nil for an expired session.
func (s *Stripe) resume(ctx context.Context, f *flow.Flow, id string) (*flow.Step, error) {
	sess, err := s.retrieve(ctx, id)
	if err != nil {
		return nil, err
	}
	switch sess.Status {
	case stripe.CheckoutSessionStatusOpen:
		return s.toCheckout(sess, nil)
	case stripe.CheckoutSessionStatusComplete:
		return &flow.Step{Redirect: returnURL(f, url.QueryEscape(sess.ID))}, nil
	}
	return nil, nil
}

// create makes the flow's session number st.Attempt and sends the browser
// to it, keeping its ID in the flow's state.
func (s *Stripe) create(ctx context.Context, f *flow.Flow, d *Data, st state) (*flow.Step, error) {
	// Stripe's clock is the real one: the flow's deadline is carried over
	// as the time it has left, so the engine's clock may differ (as the
	// insecure test clock does).
	now := s.now()
	deadline := f.Deadline
	if !f.Now.IsZero() {
		deadline = now.Add(f.Deadline.Sub(f.Now))
	}
	end, ok := sessionEnd(deadline, now)
	if !ok {
		return nil, fmt.Errorf("%w: %w", flow.ErrExpired, ErrTooLate)
	}
	sess, err := s.createSession(ctx, f, st.Attempt, s.sessionParams(f, d, end))
	if err != nil {
		return nil, stripeError("creating checkout session", err)
	}

	st.Session = sess.ID
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding payment state: %w", err)
	}
	s.log.Debug("checkout session created", "flow", f.Name, "flow_id", f.ID,
		"attempt", st.Attempt)
	return s.toCheckout(sess, b)
}

// createSession makes the flow's session number attempt from p.
//
// It asks under the keys of a chain that follows from the flow and the
// attempt alone (see idempotencyKey), so that two clicks close in time walk
// the same keys and get the same session. Stripe keeps the first answer to
// a key for 24 hours, server errors included, and replays it: a server
// error replayed means the key is spent, and the next key is tried at once.
// A server error answered for the first time is returned, as is any other
// error: the user may click again, and that click moves past the spent
// key. The chain has keyChain keys; past the last one, the replayed error
// is returned.
func (s *Stripe) createSession(ctx context.Context, f *flow.Flow, attempt int,
	p *stripe.CheckoutSessionCreateParams) (*stripe.CheckoutSession, error) {
	var err error
	for n := range keyChain {
		p.SetIdempotencyKey(idempotencyKey(f.ID, attempt, n))
		var sess *stripe.CheckoutSession
		sess, err = s.client.V1CheckoutSessions.Create(ctx, p)
		if !spentKey(err) {
			return sess, err
		}
		s.log.Warn("checkout session key spent by a server error", "flow", f.Name,
			"flow_id", f.ID, "attempt", attempt, "key", n,
			"error", stripeError("creating checkout session", err).Error())
	}
	return nil, err
}

// spentKey reports whether err is Stripe's replay of a server error kept
// under the request's idempotency key, which will answer nothing else.
func spentKey(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode < http.StatusInternalServerError {
		return false
	}
	return se.LastResponse != nil && se.LastResponse.Header.Get("Idempotent-Replayed") == "true"
}

// toCheckout sends the browser to the session's page on Stripe.
func (s *Stripe) toCheckout(sess *stripe.CheckoutSession, st []byte) (*flow.Step, error) {
	u, err := url.Parse(sess.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: checkout session has no usable URL", flow.ErrProvider)
	}
	return &flow.Step{Redirect: sess.URL, State: st}, nil
}

// sessionParams returns the parameters of the flow's Checkout Session,
// ending at end, but for its idempotency key. They follow from the flow
// alone, so that a repeated request under the same key asks for the same
// thing, as Stripe requires.
func (s *Stripe) sessionParams(f *flow.Flow, d *Data,
	end time.Time) *stripe.CheckoutSessionCreateParams {
	meta := map[string]string{
		metaHandle: f.Handle, metaFlow: f.Name, metaFlowID: f.ID, metaOrder: d.OrderID,
	}
	cancel := f.URL("/return?flow=" + url.QueryEscape(f.Handle) + "&cancel=1")
	return &stripe.CheckoutSessionCreateParams{
		Mode:      stripe.String(string(stripe.CheckoutSessionModePayment)),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{lineItem(d)},
		// Adaptive pricing would let the customer pay in another
		// currency than the one the bot signed.
		AdaptivePricing: &stripe.CheckoutSessionCreateAdaptivePricingParams{
			Enabled: stripe.Bool(false),
		},
		ClientReferenceID: stripe.String(f.ID),
		Metadata:          meta,
		PaymentIntentData: &stripe.CheckoutSessionCreatePaymentIntentDataParams{
			Description: stripe.String(d.Description),
			Metadata:    meta,
		},
		SuccessURL: stripe.String(returnURL(f, "{CHECKOUT_SESSION_ID}")),
		CancelURL:  stripe.String(cancel),
		ExpiresAt:  stripe.Int64(end.Unix()),
	}
}

// lineItem is the one thing paid for: the link's amount, once.
func lineItem(d *Data) *stripe.CheckoutSessionCreateLineItemParams {
	return &stripe.CheckoutSessionCreateLineItemParams{
		Quantity: stripe.Int64(1),
		PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
			Currency:   stripe.String(d.Currency),
			UnitAmount: stripe.Int64(d.Amount),
			ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{
				Name: stripe.String(d.Description),
			},
		},
	}
}

// returnURL is where the browser comes back to with session, which is
// either an escaped session ID or Stripe's template for it.
func returnURL(f *flow.Flow, session string) string {
	return f.URL("/return?flow=" + url.QueryEscape(f.Handle) + "&session_id=" + session)
}

// idempotencyKey names the creation of the flow's session number attempt,
// so that a second click cannot make a second session. It returns key n of
// the attempt's chain (see createSession): the first is
// handoff-checkout-FLOW-ATTEMPT, and each next one adds -rN to it.
func idempotencyKey(flowID string, attempt, n int) string {
	k := "handoff-checkout-" + flowID + "-" + strconv.Itoa(attempt)
	if n > 0 {
		k += "-r" + strconv.Itoa(n)
	}
	return k
}

// sessionEnd returns when a session made at now for a flow that expires at
// deadline ends: shortly before the flow, so that no payment can arrive
// after it, and within the 30 minutes to 24 hours Stripe allows. It
// depends on the flow alone, so that a repeated request asks for the same
// session; ok is false if the flow ends too soon for a session.
func sessionEnd(deadline, now time.Time) (end time.Time, ok bool) {
	end = deadline.Add(-sessionMargin)
	if end.Before(now.Add(minSessionLife + time.Minute)) {
		return time.Time{}, false
	}
	if latest := now.Add(maxSessionLife - time.Minute); end.After(latest) {
		// A flow of more than a day: the session ends first, rounded so
		// that two clicks close in time still ask for the same.
		end = latest.Truncate(sessionGrid)
	}
	return end, true
}

// retrieve reads a session from Stripe, with its payment intent.
func (s *Stripe) retrieve(ctx context.Context, id string) (*stripe.CheckoutSession, error) {
	p := &stripe.CheckoutSessionRetrieveParams{}
	p.AddExpand("payment_intent")
	sess, err := s.client.V1CheckoutSessions.Retrieve(ctx, id, p)
	if err != nil {
		return nil, stripeError("retrieving checkout session", err)
	}
	if sess.ID != id {
		return nil, fmt.Errorf("retrieving checkout session: %w: answer names another session",
			flow.ErrProvider)
	}
	return sess, nil
}
