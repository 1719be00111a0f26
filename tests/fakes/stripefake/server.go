// Package stripefake is a stateful fake of the parts of the Stripe API the
// payment flow uses: Checkout Sessions (create, retrieve, expire) with
// their payment intents, idempotent requests, a hosted checkout page the
// browser can pay on, and signed webhooks.
//
// It keeps the rules of the real service that the flow relies on, so that
// a test fails where Stripe would: one API key and its mode, unknown
// parameters refused, a session's life of 30 minutes to 24 hours,
// idempotency keys that replay the first answer (server errors included)
// and refuse other parameters, sessions that expire on their own, and URLs
// that are null once a session is no longer open. A test can make the
// creation of sessions fail with a server error (FailCreates).
package stripefake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config configures a fake.
type Config struct {
	// Key is the only API key the fake accepts, like sk_test_...; its
	// prefix sets the mode of the sessions and events.
	Key string
	// WebhookSecret signs the webhooks the fake sends, whsec_...
	WebhookSecret string
	// Now is the fake's clock, which Advance moves. Default: time.Now.
	Now func() time.Time
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the API and of the checkout pages.
	URL string

	cfg    Config
	live   bool
	srv    *httptest.Server
	client *http.Client

	mu       sync.Mutex
	offset   time.Duration
	sessions map[string]*session
	order    []string
	intents  map[string]*intent
	idem     map[string]*idemEntry
	events   []Event
	// failCreates is how many creations of a session are still to fail.
	failCreates int
}

// New starts a fake that stops when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		live:     strings.HasPrefix(cfg.Key, "sk_live_") || strings.HasPrefix(cfg.Key, "rk_live_"),
		sessions: map[string]*session{},
		intents:  map[string]*intent{},
		idem:     map[string]*idemEntry{},
		client:   &http.Client{Timeout: 10 * time.Second},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/checkout/sessions", s.api(s.createSession))
	mux.HandleFunc("GET /v1/checkout/sessions/{id}", s.api(s.retrieveSession))
	mux.HandleFunc("POST /v1/checkout/sessions/{id}/expire", s.api(s.expireSession))
	mux.HandleFunc("GET /checkout/{id}", s.checkoutPage)
	mux.HandleFunc("POST /checkout/{id}/pay", s.checkoutPay)
	mux.HandleFunc("GET /checkout/{id}/cancel", s.checkoutCancel)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: 404, Type: "invalid_request_error",
			Message: "Unrecognized request URL (" + r.Method + ": " + r.URL.Path + ")."})
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// now is the fake's time; the caller holds s.mu or needs no consistency.
func (s *Server) now() time.Time { return s.cfg.Now().Add(s.offset) }

// Advance moves the fake's clock forward: open sessions past their end
// expire, and say so in a checkout.session.expired event.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
	s.expireDue()
}

// apiHandler answers an API request: a value to encode, or an error.
type apiHandler func(r *http.Request) (status int, v any, err *apiError)

// api wraps an API endpoint with the key check, the idempotency of POSTs,
// and the encoding of its answer.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.cfg.Key {
			writeError(w, &apiError{status: 401, Type: "invalid_request_error",
				Message: "Invalid API Key provided."})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeError(w, &apiError{status: 400, Type: "invalid_request_error",
				Message: "Invalid request body."})
			return
		}

		s.mu.Lock()
		defer s.mu.Unlock()
		s.expireDue()
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			writeAnswer(w, s.run(h, r))
			return
		}
		s.idempotent(w, r, key, h)
	}
}

// answer is an encoded API answer, kept for idempotent replays.
type answer struct {
	status int
	body   []byte
	// saved is false for answers Stripe does not keep: parameter errors.
	saved bool
}

func (s *Server) run(h apiHandler, r *http.Request) answer {
	status, v, apiErr := h(r)
	if apiErr != nil {
		body, _ := json.Marshal(map[string]any{"error": apiErr})
		return answer{status: apiErr.status, body: body, saved: apiErr.Param == ""}
	}
	body, _ := json.Marshal(v)
	return answer{status: status, body: body, saved: true}
}

func writeAnswer(w http.ResponseWriter, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_"+randomID(7))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// apiError is Stripe's error object.
type apiError struct {
	status  int
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(map[string]any{"error": e})
	writeAnswer(w, answer{status: e.status, body: body})
}

// serverError is Stripe's answer to a request it failed to run. It names
// no parameter, so it is kept under the request's idempotency key.
func serverError() *apiError {
	return &apiError{status: http.StatusInternalServerError, Type: "api_error",
		Message: "An unknown error occurred."}
}

func paramError(param, msg string) *apiError {
	return &apiError{status: 400, Type: "invalid_request_error", Code: "parameter_invalid",
		Param: param, Message: msg}
}

// prefix is the mode part of IDs: "test" or "live".
func (s *Server) prefix() string {
	if s.live {
		return "live"
	}
	return "test"
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
