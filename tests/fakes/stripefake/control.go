package stripefake

import (
	"errors"
	"fmt"
	"maps"
	"time"
)

// Payment says how a test pays a session.
type Payment struct {
	// Async pays with a method that settles later, like a bank debit: the
	// session completes unpaid, with its payment intent processing, until
	// SettleAsync.
	Async bool
	// Email is the address the customer gives. Default: none.
	Email string
}

// Session is a test's view of a Checkout Session.
type Session struct {
	ID, Status, PaymentStatus, Currency string
	AmountTotal                         int64
	ClientReferenceID                   string
	Metadata                            map[string]string
	SuccessURL, CancelURL               string
	Created, ExpiresAt                  time.Time
	// IdempotencyKey is the key the session was made under.
	IdempotencyKey string
	// PaymentIntent is the intent's ID and IntentStatus its status, once
	// the customer paid.
	PaymentIntent, IntentStatus string
	// IntentMetadata and IntentDescription are what the session was asked
	// to give its payment intent.
	IntentMetadata    map[string]string
	IntentDescription string
	// AdaptivePricing is whether the customer may pay in another currency.
	AdaptivePricing bool
}

// ErrState means a session is not in the state an action needs.
var ErrState = errors.New("stripefake: session not in the state for this")

// Pay pays an open session as the customer would on the checkout page,
// and sends nothing: the checkout.session.completed event waits in Events.
func (s *Server) Pay(id string, p Payment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pay(id, p)
}

func (s *Server) pay(id string, p Payment) error {
	s.expireDue()
	cs, ok := s.sessions[id]
	if !ok || cs.status != "open" {
		return fmt.Errorf("%w: paying %s", ErrState, id)
	}
	pi := &intent{
		id: "pi_" + s.prefix() + "_" + randomID(12), status: "succeeded", amount: cs.amountTotal,
		currency: cs.currency, description: cs.piDescription, metadata: cs.piMetadata,
	}
	cs.status, cs.paymentStatus = "complete", "paid"
	if p.Async {
		pi.status, cs.paymentStatus = "processing", "unpaid"
	}
	s.intents[pi.id] = pi
	cs.intent, cs.email = pi.id, p.Email
	s.emit("checkout.session.completed", cs)
	return nil
}

// SettleAsync ends an asynchronous payment: paid, or failed, in which case
// the session stays complete and unpaid and its intent asks for another
// payment method. The event waits in Events.
func (s *Server) SettleAsync(id string, ok bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, found := s.sessions[id]
	if !found || cs.status != "complete" || s.intents[cs.intent].status != "processing" {
		return fmt.Errorf("%w: settling %s", ErrState, id)
	}
	pi := s.intents[cs.intent]
	if ok {
		pi.status, cs.paymentStatus = "succeeded", "paid"
		s.emit("checkout.session.async_payment_succeeded", cs)
		return nil
	}
	pi.status = "requires_payment_method"
	s.emit("checkout.session.async_payment_failed", cs)
	return nil
}

// Expire expires an open session, as the API's expire call does.
func (s *Server) Expire(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.sessions[id]
	if !ok || cs.status != "open" {
		return fmt.Errorf("%w: expiring %s", ErrState, id)
	}
	s.expire(cs)
	return nil
}

// FailCreates makes the next n creations of a Checkout Session fail with a
// server error (500, api_error). As on Stripe, the answer is kept under the
// request's idempotency key and replayed to every later request under it;
// replays do not count among the n. FailCreates(0) ends the failures still
// to come.
func (s *Server) FailCreates(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCreates = max(n, 0)
}

// FailsLeft returns how many of the failures FailCreates asked for are
// still to come.
func (s *Server) FailsLeft() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failCreates
}

// SetAmount changes a session's total, as a tampered or misconfigured
// session would show it.
func (s *Server) SetAmount(id string, amount int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, ok := s.sessions[id]; ok {
		cs.amountTotal = amount
	}
}

// Sessions returns the sessions made, oldest first.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDue()
	out := make([]Session, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.view(s.sessions[id]))
	}
	return out
}

// Last returns the newest session; ok is false if there is none.
func (s *Server) Last() (Session, bool) {
	all := s.Sessions()
	if len(all) == 0 {
		return Session{}, false
	}
	return all[len(all)-1], true
}

func (s *Server) view(cs *session) Session {
	v := Session{
		ID: cs.id, Status: cs.status, PaymentStatus: cs.paymentStatus, Currency: cs.currency,
		AmountTotal: cs.amountTotal, ClientReferenceID: cs.clientRef,
		Metadata: maps.Clone(cs.metadata), SuccessURL: cs.successURL, CancelURL: cs.cancelURL,
		Created: cs.created, ExpiresAt: cs.expiresAt, IdempotencyKey: cs.idempotencyKey,
		PaymentIntent: cs.intent, IntentMetadata: maps.Clone(cs.piMetadata),
		IntentDescription: cs.piDescription, AdaptivePricing: cs.adaptivePricing,
	}
	if pi, ok := s.intents[cs.intent]; ok {
		v.IntentStatus = pi.status
	}
	return v
}
