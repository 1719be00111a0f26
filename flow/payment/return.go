package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v82"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Failure codes the payment flow ends with; they reach the bot.
const (
	// FailCancelled: the user left the checkout. The engine shows its
	// "Payment cancelled" page for this code.
	FailCancelled = "cancelled"
	// FailPayment: an asynchronous payment (a bank debit) failed.
	FailPayment = "payment_failed"
	// FailAmount: the session's amount or currency is not the link's.
	FailAmount = "amount_mismatch"
	// FailSession: the session does not belong to the flow, or is not a
	// payment of the key's mode.
	FailSession = "session_mismatch"
)

// Result is what the bot receives for a paid flow.
type Result struct {
	// Amount and Currency are what was paid: the link's, checked against
	// the session.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// OrderID is the link's order ID.
	OrderID string `json:"orderId"`
	// SessionID and PaymentIntentID name the payment at Stripe.
	SessionID       string `json:"sessionId"`
	PaymentIntentID string `json:"paymentIntentId,omitempty"`
	// CustomerEmail is the address the customer gave Stripe, if any.
	CustomerEmail string `json:"customerEmail,omitempty"`
	// Livemode is false for a test payment.
	Livemode bool `json:"livemode"`
}

// errNotSettled means a session neither paid nor failed: still open, or
// expired without a payment.
var errNotSettled = errors.New("payment: checkout session not settled")

// Return implements flow.Returner. The return only triggers a look at the
// flow's session, retrieved from Stripe: with cancel=1 the session is
// expired and the flow fails as cancelled; otherwise session_id must name
// the flow's session, which must be complete and paid, or complete and
// waiting for an asynchronous payment.
func (s *Stripe) Return(ctx context.Context, f *flow.Flow, r *http.Request) (*flow.Outcome, error) {
	st, err := readState(f.State)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if q.Get("cancel") == "1" {
		return s.cancel(ctx, f, st)
	}

	id := q.Get("session_id")
	if st.Session == "" || id != st.Session {
		return nil, fmt.Errorf("%w: %w", flow.ErrBadRequest, ErrOtherSession)
	}
	sess, err := s.retrieve(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.judge(f, sess)
	if errors.Is(err, errNotSettled) {
		return nil, fmt.Errorf("%w: checkout session is %s", flow.ErrNotCompleted, sess.Status)
	}
	return out, err
}

// cancel ends the flow as cancelled, expiring its session first so that it
// cannot be paid afterwards. Stripe refuses to expire a session that is no
// longer open: it may have been paid meanwhile, in another tab, and is then
// judged as a return would.
func (s *Stripe) cancel(ctx context.Context, f *flow.Flow, st state) (*flow.Outcome, error) {
	cancelled := &flow.Outcome{Failure: FailCancelled}
	if st.Session == "" {
		return cancelled, nil
	}
	_, expErr := s.client.V1CheckoutSessions.Expire(ctx, st.Session, nil)
	if expErr == nil {
		return cancelled, nil
	}

	sess, err := s.retrieve(ctx, st.Session)
	if err != nil {
		return nil, err
	}
	switch sess.Status {
	case stripe.CheckoutSessionStatusExpired:
		return cancelled, nil
	case stripe.CheckoutSessionStatusOpen:
		return nil, stripeError("expiring checkout session", expErr)
	}
	return s.judge(f, sess)
}

// judge returns what a session retrieved from Stripe says of flow f. The
// return and the webhook both decide by it, so that they agree whichever
// comes first. A session that does not match the link fails the flow: it
// is the flow's own session, so the user may have paid, and the bot must
// hear of it rather than wait.
func (s *Stripe) judge(f *flow.Flow, sess *stripe.CheckoutSession) (*flow.Outcome, error) {
	d, err := ParseData(f.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", flow.ErrBadRequest, err)
	}
	if reason := s.mismatch(f, d, sess); reason != "" {
		s.log.Warn("checkout session does not match its flow", "flow", f.Name,
			"flow_id", f.ID, "session", sess.ID, "reason", reason)
		return &flow.Outcome{Failure: reason}, nil
	}

	switch {
	case sess.Status != stripe.CheckoutSessionStatusComplete:
		return nil, errNotSettled
	case sess.PaymentStatus == stripe.CheckoutSessionPaymentStatusPaid:
		return paid(d, sess)
	case paymentFailed(sess.PaymentIntent):
		return &flow.Outcome{Failure: FailPayment}, nil
	}
	// Complete but unpaid: an asynchronous payment is on its way.
	return &flow.Outcome{Waiting: true}, nil
}

// mismatch returns the failure code for a session that is not what the
// flow's link asked for, or "".
func (s *Stripe) mismatch(f *flow.Flow, d *Data, sess *stripe.CheckoutSession) string {
	switch {
	case sess.ClientReferenceID != f.ID, sess.Metadata[metaHandle] != f.Handle,
		sess.Mode != stripe.CheckoutSessionModePayment, sess.Livemode != s.live:
		return FailSession
	case sess.AmountTotal != d.Amount, !strings.EqualFold(string(sess.Currency), d.Currency):
		return FailAmount
	}
	return ""
}

// paymentFailed reports whether a complete session's payment intent has
// given up on its payment: an asynchronous payment failed.
func paymentFailed(pi *stripe.PaymentIntent) bool {
	return pi != nil && (pi.Status == stripe.PaymentIntentStatusRequiresPaymentMethod ||
		pi.Status == stripe.PaymentIntentStatusCanceled)
}

// paid returns the outcome of a paid session.
func paid(d *Data, sess *stripe.CheckoutSession) (*flow.Outcome, error) {
	res := Result{
		Amount: d.Amount, Currency: d.Currency, OrderID: d.OrderID,
		SessionID: sess.ID, CustomerEmail: sess.CustomerEmail, Livemode: sess.Livemode,
	}
	if sess.PaymentIntent != nil {
		res.PaymentIntentID = sess.PaymentIntent.ID
	}
	if sess.CustomerDetails != nil && sess.CustomerDetails.Email != "" {
		res.CustomerEmail = sess.CustomerDetails.Email
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding payment result: %w", err)
	}
	return &flow.Outcome{Result: b}, nil
}
