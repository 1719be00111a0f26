package payment

import (
	"context"
	"encoding/json"
	"fmt"
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
	// TODO: the deadline is by the engine's clock and now by the
	// provider's, as Stripe's end is; under the insecure test clock they
	// differ, and sessions end later by the clock's offset.
	end, ok := sessionEnd(f.Deadline, s.now())
	if !ok {
		return nil, fmt.Errorf("%w: %w", flow.ErrExpired, ErrTooLate)
	}
	sess, err := s.client.V1CheckoutSessions.Create(ctx, s.sessionParams(f, d, st.Attempt, end))
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

// toCheckout sends the browser to the session's page on Stripe.
func (s *Stripe) toCheckout(sess *stripe.CheckoutSession, st []byte) (*flow.Step, error) {
	u, err := url.Parse(sess.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: checkout session has no usable URL", flow.ErrProvider)
	}
	return &flow.Step{Redirect: sess.URL, State: st}, nil
}

// sessionParams returns the parameters of the flow's Checkout Session
// number attempt, ending at end. They follow from the flow alone, so that a
// repeated request under the same idempotency key asks for the same thing,
// as Stripe requires.
func (s *Stripe) sessionParams(f *flow.Flow, d *Data, attempt int,
	end time.Time) *stripe.CheckoutSessionCreateParams {
	meta := map[string]string{
		metaHandle: f.Handle, metaFlow: f.Name, metaFlowID: f.ID, metaOrder: d.OrderID,
	}
	cancel := f.URL("/return?flow=" + url.QueryEscape(f.Handle) + "&cancel=1")
	p := &stripe.CheckoutSessionCreateParams{
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
	p.SetIdempotencyKey(idempotencyKey(f.ID, attempt))
	return p
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
// so that a second click cannot make a second session.
//
// TODO: Stripe keeps the answer to a key for 24 hours, server errors
// included; a flow whose creation Stripe answered with one gets that
// answer again on every click until the flow expires.
func idempotencyKey(flowID string, attempt int) string {
	return "handoff-checkout-" + flowID + "-" + strconv.Itoa(attempt)
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
