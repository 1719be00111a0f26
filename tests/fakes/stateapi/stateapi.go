// Package stateapi is a fake of the Bot Framework State REST API v3 and of
// the OAuth client-credentials token endpoint that guards it, for tests.
//
// It keeps records as the real service does and holds callers to its rules:
// a bearer token from its own token endpoint, for the right client secret
// and scope; an eTag that changes on every write, where "*" matches any
// version and a stale one is answered 412; and the 32 KB limit on a
// record's data. Switches make it fail on demand: answer an error status,
// with or without Retry-After; answer slowly; apply a write and lose the
// answer; or let another writer change a record between a read and a
// write.
package stateapi

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// MaxData is the most the service keeps in one record's data, as JSON.
const MaxData = 32 * 1024

// DefaultScope is the scope tokens must be asked for, unless Options say.
const DefaultScope = "https://api.botframework.com/.default"

// Options configure a Server.
type Options struct {
	// AppID and AppPassword are the only client credentials the token
	// endpoint accepts.
	AppID       string
	AppPassword string
	// Scope is the only scope it grants. Default: DefaultScope.
	Scope string
	// TokenTTL is how long a token lives. Default: 1h.
	TokenTTL time.Duration
	// Now is the clock tokens expire by. Default: time.Now.
	Now func() time.Time
}

// A Bag names one record: private data has all three IDs, user data no
// conversation, and conversation data no user.
type Bag struct {
	Channel, Conversation, User string
}

// A Write is a write the service accepted over HTTP.
type Write struct {
	Bag  Bag
	Data json.RawMessage
	ETag string
}

// Stats count what the service saw.
type Stats struct {
	// TokensIssued and TokensRefused count token requests.
	TokensIssued, TokensRefused int
	// Reads and Writes count state requests answered with success.
	Reads, Writes int
	// Unauthorized counts state requests without a live token.
	Unauthorized int
	// Stale counts writes answered 412.
	Stale int
	// Failed counts requests the failure switch answered.
	Failed int
	// TooLarge counts writes refused for size.
	TooLarge int
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the State API's base URL: the endpoint to configure.
	URL string
	// TokenURL is the token endpoint.
	TokenURL string

	opts Options
	srv  *httptest.Server

	mu      sync.Mutex
	records map[Bag]*record
	tokens  map[string]time.Time
	issued  []string
	version int
	writes  []Write
	stats   Stats

	// Switches; see their setters.
	failStatus int
	failAfter  string
	failLeft   int
	delay      time.Duration
	loseLeft   int
	raceLeft   int
	raceKey    string
}

type record struct {
	data json.RawMessage
	eTag string
}

// Start runs a fake until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Scope == "" {
		opts.Scope = DefaultScope
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, records: map[Bag]*record{}, tokens: map[string]time.Time{}}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.serveToken)
	for _, p := range []string{
		"/v3/botstate/{channel}/users/{user}",
		"/v3/botstate/{channel}/conversations/{conversation}",
		"/v3/botstate/{channel}/conversations/{conversation}/users/{user}",
	} {
		mux.HandleFunc("GET "+p, s.serveState)
		mux.HandleFunc("POST "+p, s.serveState)
	}
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.TokenURL = s.srv.URL + "/token"
	return s
}

// serveToken is the client-credentials grant (RFC 6749, section 4.4), with
// the client's credentials in the form or in Basic authentication.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		s.stats.TokensRefused++
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	case id != s.opts.AppID || !equal(secret, s.opts.AppPassword):
		s.stats.TokensRefused++
		oauthError(w, http.StatusUnauthorized, "invalid_client")
	case r.PostForm.Get("scope") != s.opts.Scope:
		s.stats.TokensRefused++
		oauthError(w, http.StatusBadRequest, "invalid_scope")
	default:
		s.stats.TokensIssued++
		tok := "fake-" + randomHex(24)
		s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
		s.issued = append(s.issued, tok)
		writeJSON(w, http.StatusOK, map[string]any{
			"token_type": "Bearer", "access_token": tok,
			"expires_in": int(s.opts.TokenTTL.Seconds()),
		})
	}
}

// oauthError answers as the Microsoft identity platform does, with a
// description that must never reach a log.
func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{
		"error":             code,
		"error_description": "AADSTS000000: fake description, trace ID " + randomHex(8),
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// serveState reads (GET) or writes (POST) one record.
func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	if !s.wait(r) {
		return
	}
	bag := Bag{r.PathValue("channel"), r.PathValue("conversation"), r.PathValue("user")}

	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			apiError(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig")
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing(w) || !s.authorized(w, r) {
		return
	}
	if r.Method == http.MethodGet {
		s.read(w, bag)
		return
	}
	s.write(w, bag, body)
}

// wait holds the answer for the configured delay; it reports false if the
// caller gave up meanwhile.
func (s *Server) wait(r *http.Request) bool {
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d == 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// failing answers with the failure switch's status while it is on.
func (s *Server) failing(w http.ResponseWriter) bool {
	if s.failLeft == 0 {
		return false
	}
	if s.failLeft > 0 {
		s.failLeft--
	}
	s.stats.Failed++
	if s.failAfter != "" {
		w.Header().Set("Retry-After", s.failAfter)
	}
	apiError(w, s.failStatus, "ServiceError")
	return true
}

// authorized checks the bearer token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	exp, known := s.tokens[tok]
	if ok && known && s.opts.Now().Before(exp) {
		return true
	}
	s.stats.Unauthorized++
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	apiError(w, http.StatusUnauthorized, "Unauthorized")
	return false
}

func (s *Server) read(w http.ResponseWriter, bag Bag) {
	s.stats.Reads++
	writeJSON(w, http.StatusOK, s.botData(bag))
	if s.raceLeft > 0 {
		s.raceLeft--
		s.putLocked(bag, s.raceKey, s.raceLeft+1)
	}
}

// botData is the record as the API shows it: a record never written has
// null data and the eTag "*".
func (s *Server) botData(bag Bag) map[string]any {
	rec, ok := s.records[bag]
	if !ok {
		return map[string]any{"data": nil, "eTag": "*"}
	}
	return map[string]any{"data": rec.data, "eTag": rec.eTag}
}

func (s *Server) write(w http.ResponseWriter, bag Bag, body []byte) {
	var in struct {
		Data json.RawMessage `json:"data"`
		ETag string          `json:"eTag"`
	}
	if json.Unmarshal(body, &in) != nil || !isObjectOrNull(in.Data) {
		apiError(w, http.StatusBadRequest, "BadArgument")
		return
	}

	cur := "*"
	if rec, ok := s.records[bag]; ok {
		cur = rec.eTag
	}
	if in.ETag != "*" && in.ETag != cur {
		s.stats.Stale++
		apiError(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	var data bytes.Buffer
	_ = json.Compact(&data, in.Data)
	if data.Len() > MaxData {
		s.stats.TooLarge++
		apiError(w, http.StatusBadRequest, "MessageSizeTooBig")
		return
	}

	rec := s.store(bag, data.Bytes())
	s.stats.Writes++
	s.writes = append(s.writes, Write{Bag: bag, Data: rec.data, ETag: rec.eTag})
	if s.loseLeft > 0 {
		s.loseLeft--
		apiError(w, http.StatusInternalServerError, "ServiceError")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": rec.data, "eTag": rec.eTag})
}

func isObjectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil
}

// store replaces the record's data, with a new eTag.
func (s *Server) store(bag Bag, data []byte) *record {
	s.version++
	rec := &record{data: bytes.Clone(data), eTag: fmt.Sprintf(`W/"%d"`, s.version)}
	s.records[bag] = rec
	return rec
}

// apiError answers as the service does: an ErrorResponse with a code.
func apiError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]any{
		"error": map[string]string{"code": code, "message": "fake state service: " + code},
	})
}

// writeJSON answers with v, the bot's data in it as stored.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
