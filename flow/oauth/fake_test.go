package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Keys of the fake provider, made once: RSA keys are slow to make.
var (
	idpKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	strangerKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

const (
	testClientID     = "client-123"
	testClientSecret = "secret-456"
	tenantA          = "aaaaaaaa-1111-2222-3333-444444444444"
	tenantB          = "bbbbbbbb-1111-2222-3333-444444444444"
)

// grant is what the fake's authorization endpoint gave out a code for.
type grant struct {
	challenge, method, nonce, redirect, scope string
	used                                      bool
}

// fakeIdP is an OpenID Connect provider that keeps its codes and enforces
// what real providers do at the token endpoint: client authentication (by
// the secret, or by a signed assertion once a key is registered), a code
// used once, the same redirect_uri, and the PKCE verifier (RFC 7636).
// It serves its discovery document at /.well-known/openid-configuration and
// at /TENANT/v2.0/.well-known/openid-configuration, as Entra does.
type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server
	now func() time.Time

	mu     sync.Mutex
	grants map[string]*grant
	codes  int
	// Counters of requests, by endpoint.
	discoveries, keyFetches, exchanges, userFetches int

	// Knobs a test turns.
	discoveryDown, keysDown bool
	docIssuer               string // default: the server's URL
	tokenIssuer             string // default: docIssuer
	tid                     string
	audience                string
	nonce                   *string
	lifetime                time.Duration
	signer                  any    // default: idpKey
	keyID                   string // idpKey's kid; default: k1
	keyIssuer               string // idpKey's issuer member; default: none
	noIDToken               bool
	tokenStatus             int
	tokenError              string
	userStatus              int // the userinfo endpoint's status; default: 200
	block                   chan struct{}
	authMethods             []string // default: Entra's three
	// stall, when set, holds back the answer to a code the token endpoint
	// granted, after the code is spent, until it is closed.
	stall chan struct{}

	// client is the client's registered key: once set, the client must
	// authenticate with an assertion signed by it, and not with the secret.
	client *clientRegistration
	// jtis are the assertions' IDs seen, each of which is refused again;
	// assertions are those received, for tests to read.
	jtis       map[string]bool
	assertions []string
}

// clientRegistration is a key registered for the client, as on Entra's
// Certificates & secrets page: the public key, the algorithm it signs with,
// and its certificate, whose thumbprint assertions must name.
type clientRegistration struct {
	pub  crypto.PublicKey
	alg  string
	cert *x509.Certificate
}

func newFakeIdP(t *testing.T, now func() time.Time) *fakeIdP {
	f := &fakeIdP{t: t, now: now, grants: map[string]*grant{}, lifetime: time.Hour,
		jtis: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /keys", f.keys)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) issuer() string {
	if f.docIssuer != "" {
		return f.docIssuer
	}
	return f.srv.URL
}

func (f *fakeIdP) discovery(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discoveries++
	if f.discoveryDown {
		http.Error(w, "<html>maintenance SECRET-PAGE</html>", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                f.issuer(),
		"authorization_endpoint":                f.srv.URL + "/authorize",
		"token_endpoint":                        f.srv.URL + "/token",
		"jwks_uri":                              f.srv.URL + "/keys",
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"token_endpoint_auth_methods_supported": f.authMethodsOrDefault(),
	})
}

func (f *fakeIdP) authMethodsOrDefault() []string {
	if f.authMethods != nil {
		return f.authMethods
	}
	return []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}
}

func (f *fakeIdP) keys(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyFetches++
	if f.keysDown {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": []any{
		f.publishedKey(),
		jose.JSONWebKey{Key: []byte("symmetric keys are skipped"), KeyID: "hs", Algorithm: "HS256"},
	}})
}

// publishedKey returns idpKey as the key set shows it, with an issuer
// member where the test gives one, as Entra's multi-tenant key sets do.
func (f *fakeIdP) publishedKey() map[string]any {
	b, err := json.Marshal(jose.JSONWebKey{Key: &idpKey().PublicKey, KeyID: f.kid(),
		Algorithm: "RS256", Use: "sig"})
	var key map[string]any
	if err == nil {
		err = json.Unmarshal(b, &key)
	}
	if err != nil {
		f.t.Error(err)
	}
	if f.keyIssuer != "" {
		key["issuer"] = f.keyIssuer
	}
	return key
}

func (f *fakeIdP) kid() string {
	return or(f.keyID, "k1")
}

// authorize plays the user consenting at the authorization URL: it checks
// the request as a provider does and returns the callback URL with a code.
func (f *fakeIdP) authorize(authURL string) *url.URL {
	f.t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		f.t.Fatal(err)
	}
	q := u.Query()
	if q.Get("client_id") != testClientID || q.Get("response_type") != "code" {
		f.t.Fatalf("authorization request: %v", q)
	}
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		f.t.Fatalf("authorization request without S256 PKCE: %v", q)
	}

	f.mu.Lock()
	f.codes++
	code := fmt.Sprintf("code-%d", f.codes)
	f.grants[code] = &grant{
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"),
		nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), scope: q.Get("scope"),
	}
	f.mu.Unlock()

	cb, _ := url.Parse(q.Get("redirect_uri"))
	cb.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	return cb
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}

	status, answer, stall := f.answer(r)
	if stall != nil {
		// The code is spent, but the answer is slow to come back.
		<-stall
	}
	writeJSON(w, status, answer)
}

// answer returns the token endpoint's answer to r, and the stall knob when
// it grants a code.
func (f *fakeIdP) answer(r *http.Request) (int, any, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exchanges++
	if f.tokenStatus != 0 {
		return f.tokenStatus, map[string]string{
			"error": f.tokenError, "error_description": "AADSTS-like text SECRET-DESCRIPTION",
		}, nil
	}
	_ = r.ParseForm()
	if status, code := f.checkTokenRequest(r); code != "" {
		return status, map[string]string{"error": code,
			"error_description": "refused SECRET-DESCRIPTION"}, nil
	}

	g := f.grants[r.PostForm.Get("code")]
	g.used = true
	resp := map[string]any{
		"access_token": "access-" + r.PostForm.Get("code"), "refresh_token": "refresh-1",
		"token_type": "Bearer", "expires_in": 3600, "scope": g.scope,
	}
	if !f.noIDToken {
		resp["id_token"] = f.idToken(g)
	}
	return http.StatusOK, resp, f.stall
}

// checkTokenRequest returns the OAuth error a real token endpoint answers.
func (f *fakeIdP) checkTokenRequest(r *http.Request) (int, string) {
	form := r.PostForm
	if !f.authenticated(form) {
		return http.StatusUnauthorized, "invalid_client"
	}
	if form.Get("grant_type") != "authorization_code" {
		return http.StatusBadRequest, "unsupported_grant_type"
	}
	g := f.grants[form.Get("code")]
	if g == nil || g.used || g.redirect != form.Get("redirect_uri") {
		return http.StatusBadRequest, "invalid_grant"
	}
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		return http.StatusBadRequest, "invalid_grant"
	}
	return 0, ""
}

// authenticated checks the client as a real token endpoint does: by its
// secret, or, once a key is registered, by an assertion and nothing else.
func (f *fakeIdP) authenticated(form url.Values) bool {
	if form.Get("client_id") != testClientID {
		return false
	}
	if f.client == nil {
		return form.Get("client_secret") == testClientSecret && !form.Has("client_assertion")
	}
	if form.Has("client_secret") || form.Get("client_assertion_type") !=
		"urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return false
	}
	raw := form.Get("client_assertion")
	f.assertions = append(f.assertions, raw)
	return f.checkAssertion(raw) == nil
}

// checkAssertion checks a client assertion as RFC 7523, section 3, asks:
// signed by the registered key with its algorithm, iss and sub the client,
// aud this token endpoint, dated and short-lived, a jti never seen before,
// and the certificate's thumbprints where a certificate is registered.
func (f *fakeIdP) checkAssertion(raw string) error {
	reg := f.client
	var c jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(raw, &c,
		func(*jwt.Token) (any, error) { return reg.pub, nil },
		jwt.WithValidMethods([]string{reg.alg}), jwt.WithIssuer(testClientID),
		jwt.WithSubject(testClientID), jwt.WithAudience(f.srv.URL+"/token"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(f.now))
	switch {
	case err != nil:
		return err
	case c.NotBefore == nil || c.IssuedAt == nil ||
		c.ExpiresAt.Sub(c.IssuedAt.Time) > 10*time.Minute:
		return errors.New("assertion is not dated or lives too long")
	case c.ID == "" || f.jtis[c.ID]:
		return errors.New("assertion has no jti or a used one")
	}
	if reg.cert != nil {
		sum1, sum256 := sha1.Sum(reg.cert.Raw), sha256.Sum256(reg.cert.Raw)
		if tok.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum256[:]) ||
			tok.Header["x5t"] != base64.RawURLEncoding.EncodeToString(sum1[:]) {
			return errors.New("assertion does not name the registered certificate")
		}
	}
	f.jtis[c.ID] = true
	return nil
}

// idToken signs an ID token for a grant, bent by the test's knobs.
func (f *fakeIdP) idToken(g *grant) string {
	now := f.now()
	claims := jwt.MapClaims{
		"iss": or(f.tokenIssuer, f.issuer()), "sub": "user-1", "aud": or(f.audience, testClientID),
		"iat": now.Unix(), "exp": now.Add(f.lifetime).Unix(), "nonce": g.nonce,
		"name": "Jane Doe", "email": "jane@example.com",
	}
	if f.nonce != nil {
		claims["nonce"] = *f.nonce
	}
	if f.tid != "" {
		claims["tid"] = f.tid
	}

	method, key, kid := jwt.SigningMethod(jwt.SigningMethodRS256), any(idpKey()), f.kid()
	switch k := f.signer.(type) {
	case *ecdsa.PrivateKey:
		method, key, kid = jwt.SigningMethodES256, k, "stranger"
	case []byte:
		method, key, kid = jwt.SigningMethodHS256, k, "hs"
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// userinfo answers for an access token the token endpoint gave out.
func (f *fakeIdP) userinfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userFetches++
	code, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer access-")
	switch {
	case f.userStatus != 0:
		writeJSON(w, f.userStatus, map[string]string{"error": "SECRET-USERINFO"})
	case !ok || f.grants[code] == nil || !f.grants[code].used:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"sub": "user-1", "name": "Jane Doe"})
	}
}

func (f *fakeIdP) set(change func(*fakeIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// sentAssertions returns the client assertions the token endpoint received.
func (f *fakeIdP) sentAssertions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.assertions)
}

func (f *fakeIdP) count(n *int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakeGitHub answers like GitHub's OAuth app endpoints and REST API: a
// code used once, errors as 200 answers with an error field, form-encoded
// token answers unless JSON is asked for, and /user for the token.
type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	grants map[string]*grant
	tokens map[string]bool
	login  string
	// userStatus, when set, is the status /user answers with.
	userStatus int
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	g := &fakeGitHub{t: t, grants: map[string]*grant{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/v3/user", g.user)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGitHub) authorize(authURL string) *url.URL {
	g.t.Helper()
	u, _ := url.Parse(authURL)
	if u.Path != "/login/oauth/authorize" {
		g.t.Fatalf("authorize path %q", u.Path)
	}
	q := u.Query()
	g.mu.Lock()
	code := fmt.Sprintf("gh-code-%d", len(g.grants)+1)
	g.grants[code] = &grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
		scope: q.Get("scope")}
	g.login = q.Get("login")
	g.mu.Unlock()

	cb, _ := url.Parse(q.Get("redirect_uri"))
	cb.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	return cb
}

func (g *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	g.mu.Lock()
	defer g.mu.Unlock()

	f := r.PostForm
	gr := g.grants[f.Get("code")]
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	var vals url.Values
	switch {
	case f.Get("client_id") != testClientID || f.Get("client_secret") != testClientSecret:
		vals = url.Values{"error": {"incorrect_client_credentials"}}
	case gr == nil || gr.used || base64.RawURLEncoding.EncodeToString(sum[:]) != gr.challenge:
		vals = url.Values{"error": {"bad_verification_code"},
			"error_description": {"The code passed is incorrect or expired."}}
	default:
		gr.used = true
		tok := "gho_" + f.Get("code")
		g.tokens[tok] = true
		vals = url.Values{"access_token": {tok}, "token_type": {"bearer"},
			"scope": {strings.ReplaceAll(gr.scope, " ", ",")}}
	}
	// GitHub answers errors with 200, form-encoded unless asked for JSON.
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(vals.Encode()))
}

func (g *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if g.userStatus != 0 {
		writeJSON(w, g.userStatus, map[string]string{"message": "SECRET-ANSWER"})
		return
	}
	if !g.tokens[tok] || r.Header.Get("User-Agent") == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": "octocat", "id": 1, "name": "The Octocat"})
}
