package stripefake

import (
	"html/template"
	"net/http"
	"strings"
)

var page = template.Must(template.New("checkout").Parse(`<!doctype html>
<title>Fake Checkout</title>
<h1>Pay {{.Amount}} {{.Currency}}</h1>
<form method="post" action="/checkout/{{.ID}}/pay">
<input type="hidden" name="outcome" value="paid">
<button>Pay</button>
</form>
<form method="post" action="/checkout/{{.ID}}/pay">
<input type="hidden" name="outcome" value="async">
<button>Pay by bank debit</button>
</form>
<a href="/checkout/{{.ID}}/cancel">Back</a>
`))

// checkoutPage is the hosted checkout page of an open session.
func (s *Server) checkoutPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.expireDue()
	cs, ok := s.sessions[r.PathValue("id")]
	var data map[string]any
	if ok {
		data = map[string]any{"ID": cs.id, "Amount": cs.amountTotal, "Currency": cs.currency}
	}
	open := ok && cs.status == "open"
	s.mu.Unlock()

	switch {
	case !ok:
		http.NotFound(w, r)
	case !open:
		http.Error(w, "This checkout session is no longer open.", http.StatusGone)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, data)
	}
}

// checkoutPay pays a session from its page and sends the browser to the
// success URL, with the session's ID in place of Stripe's template.
func (s *Server) checkoutPay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := Payment{Async: r.FormValue("outcome") == "async", Email: r.FormValue("email")}
	if p.Email == "" {
		p.Email = "payer@example.com"
	}
	s.mu.Lock()
	err := s.pay(id, p)
	var success string
	if cs, ok := s.sessions[id]; ok {
		success = strings.ReplaceAll(cs.successURL, "{CHECKOUT_SESSION_ID}", cs.id)
	}
	s.mu.Unlock()

	if err != nil {
		http.Error(w, "This checkout session cannot be paid.", http.StatusGone)
		return
	}
	http.Redirect(w, r, success, http.StatusSeeOther)
}

// checkoutCancel is the page's back link: the browser goes to the cancel
// URL and the session stays open, as on Stripe.
func (s *Server) checkoutCancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cs, ok := s.sessions[r.PathValue("id")]
	var cancel string
	if ok {
		cancel = cs.cancelURL
	}
	s.mu.Unlock()
	if cancel == "" {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, cancel, http.StatusSeeOther)
}
