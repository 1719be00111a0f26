package payment

import "errors"

// Errors a caller can test with errors.Is. Errors the engine must answer
// with a status also wrap flow.ErrBadRequest, flow.ErrNotCompleted or
// flow.ErrProvider.
var (
	// ErrBadData means a link's data does not describe a payment.
	ErrBadData = errors.New("payment: bad link data")
	// ErrBadSignature means a webhook's Stripe-Signature is missing or
	// does not check out with the endpoint's secret.
	ErrBadSignature = errors.New("payment: bad webhook signature")
	// ErrStaleWebhook means a webhook was signed too long ago, or too far
	// ahead of now.
	ErrStaleWebhook = errors.New("payment: webhook timestamp outside tolerance")
	// ErrWrongMode means an event or session is of the other mode than the
	// key: a test event at a live key, or a live one at a test key.
	ErrWrongMode = errors.New("payment: test and live mode mixed")
	// ErrTooLate means a flow ends too soon for a Checkout Session, which
	// Stripe keeps open at least 30 minutes: a payment could arrive after
	// the flow ended.
	ErrTooLate = errors.New("payment: flow ends too soon for a checkout session")
	// ErrOtherSession means a return names a session that is not the
	// flow's.
	ErrOtherSession = errors.New("payment: not the flow's checkout session")
)
