package stripefake

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/currency"
)

// Rules of Checkout Sessions that the fake keeps.
const (
	minLife        = 30 * time.Minute
	maxLife        = 24 * time.Hour
	maxMetaKeys    = 50
	maxMetaKey     = 40
	maxMetaValue   = 500
	maxClientRef   = 200
	defaultMinimum = 50
)

// minimums are the smallest totals Stripe charges, in minor units, where
// they differ from defaultMinimum.
var minimums = map[string]int64{"gbp": 30, "hkd": 400, "jpy": 50, "mxn": 1000}

// session is a Checkout Session.
type session struct {
	id, mode, status, paymentStatus string
	currency                        string
	amountSubtotal, amountTotal     int64
	clientRef                       string
	metadata                        map[string]string
	successURL, cancelURL           string
	created, expiresAt              time.Time
	intent                          string
	email                           string
	idempotencyKey                  string
	piDescription                   string
	piMetadata                      map[string]string
	adaptivePricing                 bool
}

// intent is a payment intent.
type intent struct {
	id, status, currency, description string
	amount                            int64
	metadata                          map[string]string
}

func (s *Server) createSession(r *http.Request) (int, any, *apiError) {
	// A failure asked for by FailCreates, kept under the key like any answer.
	if s.failCreates > 0 {
		s.failCreates--
		return 0, nil, serverError()
	}

	f := newForm(r.PostForm)
	now := s.now()
	cs := &session{
		id:     "cs_" + s.prefix() + "_" + randomID(12),
		status: "open", paymentStatus: "unpaid",
		created: now, expiresAt: now.Add(maxLife),
	}
	steps := []func(*form, *session) *apiError{
		readMode, readLineItems, readURLs, readReference, s.readExpiry, readIntentData,
		readAdaptivePricing,
	}
	for _, step := range steps {
		if err := step(f, cs); err != nil {
			return 0, nil, err
		}
	}
	for _, i := range f.list("expand") {
		f.str("expand[" + strconv.Itoa(i) + "]")
	}
	if k := f.unknown(); k != "" {
		return 0, nil, paramError(k, "Received unknown parameter: "+k)
	}

	cs.idempotencyKey = r.Header.Get("Idempotency-Key")
	s.sessions[cs.id] = cs
	s.order = append(s.order, cs.id)
	return http.StatusOK, s.sessionJSON(cs, false), nil
}

func readMode(f *form, cs *session) *apiError {
	mode, ok := f.str("mode")
	switch {
	case !ok:
		return paramError("mode", "Missing required param: mode.")
	case mode != "payment":
		return paramError("mode", "This fake supports only mode payment.")
	}
	cs.mode = mode
	return nil
}

// readLineItems reads price_data line items and totals them.
func readLineItems(f *form, cs *session) *apiError {
	items := f.list("line_items")
	if len(items) == 0 {
		return paramError("line_items", "You must provide at least one line item in payment mode.")
	}
	for _, i := range items {
		p := "line_items[" + strconv.Itoa(i) + "]"
		if _, ok := f.str(p + "[price]"); ok {
			return paramError(p+"[price]", "This fake supports only price_data.")
		}
		cur, _ := f.str(p + "[price_data][currency]")
		if _, err := currency.ParseISO(cur); err != nil || len(cur) != 3 {
			return paramError(p+"[price_data][currency]", "Invalid currency: "+cur+".")
		}
		cur = strings.ToLower(cur)
		if cs.currency != "" && cur != cs.currency {
			return paramError(p+"[price_data][currency]", "All line items must share a currency.")
		}
		cs.currency = cur

		unit, given, bad := f.int(p + "[price_data][unit_amount]")
		if !given || bad || unit < 0 {
			return paramError(p+"[price_data][unit_amount]", "Invalid non-negative integer.")
		}
		if name, _ := f.str(p + "[price_data][product_data][name]"); name == "" {
			return paramError(p+"[price_data][product_data][name]",
				"Missing required param: product_data[name].")
		}
		qty, given, bad := f.int(p + "[quantity]")
		if !given || bad || qty < 1 {
			return paramError(p+"[quantity]", "Quantity must be a positive integer.")
		}
		cs.amountSubtotal += unit * qty
	}
	cs.amountTotal = cs.amountSubtotal

	minimum := defaultMinimum
	if m, ok := minimums[cs.currency]; ok {
		minimum = int(m)
	}
	if cs.amountTotal < int64(minimum) {
		e := paramError("line_items", fmt.Sprintf("The Checkout Session's total amount due "+
			"must add up to at least %d %s.", minimum, cs.currency))
		e.Code = "amount_too_small"
		return e
	}
	return nil
}

func readURLs(f *form, cs *session) *apiError {
	for _, p := range []struct {
		name string
		dst  *string
	}{{"success_url", &cs.successURL}, {"cancel_url", &cs.cancelURL}} {
		v, ok := f.str(p.name)
		if !ok {
			continue
		}
		u, err := url.Parse(strings.ReplaceAll(v, "{CHECKOUT_SESSION_ID}", "x"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return paramError(p.name, "Not a valid URL.")
		}
		*p.dst = v
	}
	if cs.successURL == "" {
		return paramError("success_url", "Missing required param: success_url.")
	}
	return nil
}

func readReference(f *form, cs *session) *apiError {
	ref, _ := f.str("client_reference_id")
	if len(ref) > maxClientRef {
		return paramError("client_reference_id", "client_reference_id is too long.")
	}
	cs.clientRef = ref
	cs.metadata = f.dict("metadata")
	return checkMetadata("metadata", cs.metadata)
}

func checkMetadata(param string, m map[string]string) *apiError {
	if len(m) > maxMetaKeys {
		return paramError(param, "Metadata can have at most 50 keys.")
	}
	for k, v := range m {
		if len(k) > maxMetaKey || len(v) > maxMetaValue {
			return paramError(param+"["+k+"]", "Metadata keys are at most 40 characters "+
				"and values at most 500.")
		}
	}
	return nil
}

// readExpiry keeps Stripe's rule: a session ends 30 minutes to 24 hours
// after it is made.
func (s *Server) readExpiry(f *form, cs *session) *apiError {
	at, given, bad := f.int("expires_at")
	if !given {
		return nil
	}
	end := time.Unix(at, 0)
	if bad || end.Before(cs.created.Add(minLife)) || end.After(cs.created.Add(maxLife)) {
		return paramError("expires_at", "The `expires_at` timestamp must be between 30 "+
			"minutes and 24 hours from Checkout Session creation.")
	}
	cs.expiresAt = end
	return nil
}

func readIntentData(f *form, cs *session) *apiError {
	cs.piDescription, _ = f.str("payment_intent_data[description]")
	cs.piMetadata = f.dict("payment_intent_data[metadata]")
	return checkMetadata("payment_intent_data[metadata]", cs.piMetadata)
}

func readAdaptivePricing(f *form, cs *session) *apiError {
	on, given := f.bool("adaptive_pricing[enabled]")
	cs.adaptivePricing = !given || on
	return nil
}

func (s *Server) retrieveSession(r *http.Request) (int, any, *apiError) {
	cs, err := s.find(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	expand := false
	for k, v := range r.Form {
		if strings.HasPrefix(k, "expand") && len(v) > 0 && v[0] == "payment_intent" {
			expand = true
		}
	}
	return http.StatusOK, s.sessionJSON(cs, expand), nil
}

func (s *Server) expireSession(r *http.Request) (int, any, *apiError) {
	cs, err := s.find(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if cs.status != "open" {
		return 0, nil, &apiError{status: 400, Type: "invalid_request_error",
			Message: `Only Checkout Sessions with a status in ["open"] can be expired.`}
	}
	s.expire(cs)
	return http.StatusOK, s.sessionJSON(cs, false), nil
}

func (s *Server) find(id string) (*session, *apiError) {
	cs, ok := s.sessions[id]
	if !ok {
		return nil, &apiError{status: 404, Type: "invalid_request_error", Code: "resource_missing",
			Param: "session", Message: "No such checkout.session: '" + id + "'"}
	}
	return cs, nil
}

// expire ends an open session and says so in an event.
func (s *Server) expire(cs *session) {
	cs.status = "expired"
	s.emit("checkout.session.expired", cs)
}

// expireDue expires the open sessions past their end.
func (s *Server) expireDue() {
	now := s.now()
	for _, id := range s.order {
		if cs := s.sessions[id]; cs.status == "open" && !now.Before(cs.expiresAt) {
			s.expire(cs)
		}
	}
}

// sessionJSON is a session as the API shows it, with its payment intent
// as an ID or, expanded, as an object.
func (s *Server) sessionJSON(cs *session, expand bool) map[string]any {
	var pi any
	if cs.intent != "" {
		pi = cs.intent
		if expand {
			pi = s.intentJSON(s.intents[cs.intent])
		}
	}
	var pageURL, details, ref any
	if cs.status == "open" {
		pageURL = s.URL + "/checkout/" + cs.id
	}
	if cs.email != "" {
		details = map[string]any{"email": cs.email}
	}
	if cs.clientRef != "" {
		ref = cs.clientRef
	}
	return map[string]any{
		"id": cs.id, "object": "checkout.session", "livemode": s.live, "mode": cs.mode,
		"status": cs.status, "payment_status": cs.paymentStatus,
		"amount_subtotal": cs.amountSubtotal, "amount_total": cs.amountTotal,
		"currency": cs.currency, "client_reference_id": ref, "metadata": cs.metadata,
		"success_url": cs.successURL, "cancel_url": cs.cancelURL, "url": pageURL,
		"created": cs.created.Unix(), "expires_at": cs.expiresAt.Unix(),
		"payment_intent": pi, "customer_details": details,
	}
}

func (s *Server) intentJSON(pi *intent) map[string]any {
	return map[string]any{
		"id": pi.id, "object": "payment_intent", "livemode": s.live, "status": pi.status,
		"amount": pi.amount, "currency": pi.currency, "description": pi.description,
		"metadata": pi.metadata,
	}
}
