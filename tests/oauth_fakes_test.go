package tests

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// mockIdP is mockoidc, an OpenID Connect provider that keeps sessions and
// one-time codes and checks the PKCE verifier against the challenge, behind
// a wrapper that adds what real providers enforce and mockoidc does not:
//
//   - the authorization request must carry an S256 challenge; mockoidc
//     takes a request without one and then any token request for it;
//   - redirect_uri must be the registered one, at the authorization
//     endpoint and again at the token endpoint (RFC 6749, 4.1.3);
//   - the user may decline consent, which sends error=access_denied back;
//   - expires_in is in seconds; mockoidc writes a Go duration.
//
// Tests can also take its discovery document or its keys down.
type mockIdP struct {
	t *testing.T
	m *mockoidc.MockOIDC

	mu            sync.Mutex
	redirectURI   string
	codeRedirect  map[string]string
	decline       bool
	discoveryDown bool
	keysDown      bool
	exchanges     int
}

// newMockIdP returns a provider for client ID and secret, not started yet.
func newMockIdP(t *testing.T, clientID, secret string) *mockIdP {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ClientID, m.ClientSecret = clientID, secret
	p := &mockIdP{t: t, m: m, codeRedirect: map[string]string{}}
	if err := m.AddMiddleware(p.wrap); err != nil {
		t.Fatal(err)
	}
	return p
}

// start serves the provider on addr, like 127.0.0.1:0.
func (p *mockIdP) start(addr string) *mockIdP {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.m.Start(ln, nil); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _ = p.m.Shutdown() })
	return p
}

func (p *mockIdP) issuer() string { return p.m.Issuer() }

func (p *mockIdP) set(change func(*mockIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(p)
}

func (p *mockIdP) exchangeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exchanges
}

// wrap is the middleware around each of mockoidc's endpoints. It also
// serialises requests, as mockoidc's session store is a bare map.
func (p *mockIdP) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch r.URL.Path {
		case mockoidc.DiscoveryEndpoint:
			if p.discoveryDown {
				http.Error(w, "<h1>IDP-MAINTENANCE-PAGE</h1>", http.StatusServiceUnavailable)
				return
			}
		case mockoidc.JWKSEndpoint:
			if p.keysDown {
				http.Error(w, "keys unavailable", http.StatusInternalServerError)
				return
			}
		case mockoidc.AuthorizationEndpoint:
			p.authorize(w, r, next)
			return
		case mockoidc.TokenEndpoint:
			p.token(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *mockIdP) authorize(w http.ResponseWriter, r *http.Request, next http.Handler) {
	q := r.URL.Query()
	if q.Get("redirect_uri") != p.redirectURI {
		// Real providers show an error page rather than redirect to an
		// unregistered URI.
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(p.redirectURI)
	switch {
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back.RawQuery = url.Values{"error": {"invalid_request"}, "state": {q.Get("state")},
			"error_description": {"PKCE with S256 is required"}}.Encode()
	case p.decline:
		back.RawQuery = url.Values{"error": {"access_denied"}, "state": {q.Get("state")},
			"error_description": {"The user declined IDP-DESCRIPTION-TEXT"}}.Encode()
	default:
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && rec.Code == http.StatusFound {
			p.codeRedirect[loc.Query().Get("code")] = p.redirectURI
		}
		copyRecorded(w, rec)
		return
	}
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *mockIdP) token(w http.ResponseWriter, r *http.Request, next http.Handler) {
	_ = r.ParseForm()
	p.exchanges++
	f := r.PostForm
	code := f.Get("code")
	if f.Get("grant_type") == "authorization_code" && p.codeRedirect[code] != f.Get("redirect_uri") {
		idpJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant",
			"error_description": "redirect_uri does not match"})
		return
	}

	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
		if ns, ok := body["expires_in"].(float64); ok {
			body["expires_in"] = int(time.Duration(ns) / time.Second)
		}
		idpJSON(w, http.StatusOK, body)
		return
	}
	copyRecorded(w, rec)
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func idpJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthGrant is what a fake's authorization endpoint gave a code for.
type oauthGrant struct {
	challenge, nonce, redirect, scope, tenant string
	// client is the client ID the code was given to.
	client string
	user   idpUser
	used   bool
}

// idpUser is who signs in at a fake.
type idpUser struct {
	TenantID, ObjectID, Name, UPN string
}

// s256 returns the PKCE S256 challenge of a verifier.
func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The personal Microsoft accounts tenant.
const msaTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// entraFake answers like the Microsoft identity platform's v2.0 endpoints
// for a few tenants: a discovery document per tenant, naming the tenant's
// issuer, or the {tenantid} template for common and organizations; the
// keys; an authorization endpoint where the queued user consents; and a
// token endpoint that authenticates the client (see authenticate), checks
// the one-time code, the redirect_uri and the PKCE verifier, and issues ID
// tokens with tid and oid from the user's own tenant. Errors carry AADSTS
// text, as Entra's do.
type entraFake struct {
	t       *testing.T
	srv     *httptest.Server
	keys    *mockoidc.Keypair
	domains map[string]string // verified domain to tenant ID

	mu       sync.Mutex
	clients  map[string]*entraClient
	redirect string
	user     idpUser
	grants   map[string]*oauthGrant
	// jtis are the IDs of the client assertions accepted: Entra refuses
	// an assertion it has seen before.
	jtis map[string]bool
	// auths are the credentials of the clients authenticated, in order:
	// "client_secret", or the assertion's alg.
	auths []string
	// forgeIssuer makes ID tokens name another tenant's issuer than their
	// tid, as a token from a rogue tenant might.
	forgeIssuer bool
}

// entraClient is an app registration's credentials: a client secret, or
// certificates whose keys sign client assertions.
type entraClient struct {
	secret string
	certs  []*x509.Certificate
}

const (
	contosoTenant  = "11111111-aaaa-4bbb-8ccc-000000000001"
	fabrikamTenant = "22222222-aaaa-4bbb-8ccc-000000000002"
)

// newEntraFake returns a running fake with one app registration, clientID,
// which authenticates with secret.
func newEntraFake(t *testing.T, clientID, secret string) *entraFake {
	t.Helper()
	kp, err := mockoidc.NewKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &entraFake{t: t, keys: kp,
		domains: map[string]string{"contoso.onmicrosoft.com": contosoTenant},
		clients: map[string]*entraClient{clientID: {secret: secret}},
		grants:  map[string]*oauthGrant{}, jtis: map[string]bool{},
		user: idpUser{TenantID: contosoTenant, ObjectID: "oid-alice", Name: "Alice",
			UPN: "alice@contoso.onmicrosoft.com"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", e.jwks)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", e.authorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.token)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// registerCertificate uploads cert to clientID's app registration, which
// is created without a secret if it does not exist.
func (e *entraFake) registerCertificate(clientID string, cert *x509.Certificate) {
	e.set(func(e *entraFake) {
		c := e.clients[clientID]
		if c == nil {
			c = &entraClient{}
			e.clients[clientID] = c
		}
		c.certs = append(c.certs, cert)
	})
}

// clientAuths returns how the clients authenticated at the token endpoint.
func (e *entraFake) clientAuths() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.auths)
}

func (e *entraFake) set(change func(*entraFake)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	change(e)
}

// issuerOf returns the issuer a tenant's discovery document names, or "".
func (e *entraFake) issuerOf(tenant string) string {
	switch tenant {
	case "common", "organizations":
		return e.srv.URL + "/{tenantid}/v2.0"
	case "consumers":
		return e.srv.URL + "/" + msaTenant + "/v2.0"
	}
	if id, ok := e.domains[tenant]; ok {
		tenant = id
	}
	if tenant == contosoTenant || tenant == fabrikamTenant {
		return e.srv.URL + "/" + tenant + "/v2.0"
	}
	return ""
}

func (e *entraFake) discovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	iss := e.issuerOf(tenant)
	if iss == "" {
		idpJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_tenant",
			"error_description": "AADSTS90002: Tenant '" + tenant + "' not found."})
		return
	}
	base := e.srv.URL + "/" + tenant
	idpJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{
			"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"tenant_region_scope": "EU",
	})
}

func (e *entraFake) jwks(w http.ResponseWriter, _ *http.Request) {
	b, err := e.keys.JWKS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (e *entraFake) authorize(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := r.URL.Query()
	if e.clients[q.Get("client_id")] == nil || q.Get("redirect_uri") != e.redirect {
		http.Error(w, "AADSTS50011: The redirect URI does not match", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(e.redirect)
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		!slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		back.RawQuery = url.Values{"error": {"invalid_request"}, "state": {q.Get("state")},
			"error_description": {"AADSTS900144: bad request"}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return
	}

	code := fmt.Sprintf("0.AAA-entra-code-%d", len(e.grants)+1)
	e.grants[code] = &oauthGrant{client: q.Get("client_id"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), scope: q.Get("scope"),
		tenant: r.PathValue("tenant"), user: e.user}
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")},
		"session_state": {"00000000-0000-0000-0000-000000000000"}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (e *entraFake) token(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = r.ParseForm()
	f := r.PostForm
	client, refused := e.authenticate(r)
	if refused != nil {
		idpJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client",
			"error_description": refused.description(), "error_codes": []int{refused.code}})
		return
	}
	g := e.grants[f.Get("code")]
	switch {
	case f.Get("grant_type") != "authorization_code" || g == nil || g.client != client ||
		g.tenant != r.PathValue("tenant"):
		idpJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant",
			"error_description": "AADSTS70000: The provided grant is invalid.", "error_codes": []int{70000}})
		return
	case g.used:
		idpJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant",
			"error_description": "AADSTS54005: OAuth2 Authorization code was already redeemed.",
			"error_codes":       []int{54005}})
		return
	case g.redirect != f.Get("redirect_uri") || pkceS256(f.Get("code_verifier")) != g.challenge:
		idpJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant",
			"error_description": "AADSTS501481: The Code_Verifier does not match the code_challenge.",
			"error_codes":       []int{501481}})
		return
	}
	g.used = true

	scopes := strings.Fields(g.scope)
	granted := []string{}
	for _, s := range scopes {
		if s != "openid" && s != "profile" && s != "email" && s != "offline_access" {
			s = "https://graph.microsoft.com/" + s
		}
		granted = append(granted, s)
	}
	resp := map[string]any{
		"token_type": "Bearer", "scope": strings.Join(granted, " "),
		"expires_in": 3599, "ext_expires_in": 3599,
		"access_token": "eyJ0eXAiOiJKV1QiLCJub25jZSI6Ijxz.entra-access." + g.user.ObjectID,
		"id_token":     e.idToken(g),
	}
	if slices.Contains(scopes, "offline_access") {
		resp["refresh_token"] = "0.AAAA-entra-refresh"
	}
	idpJSON(w, http.StatusOK, resp)
}

// aadError is the token endpoint's refusal of a client, with its AADSTS
// number. Its text names the check that failed, so that tests can tell
// the refusals apart.
type aadError struct {
	code int
	text string
}

func (a *aadError) description() string { return fmt.Sprintf("AADSTS%d: %s", a.code, a.text) }

// jwtBearer is the client_assertion_type of a signed client assertion.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife is the longest a client assertion may be valid, from
// nbf (or iat) to exp: Entra asks for at most 10 minutes.
const maxAssertionLife = 10 * time.Minute

// authenticate returns the client a token request comes from. As at Entra,
// a request carries one credential: the registration's client secret, in
// the body or the header, or an assertion signed with the key of one of
// its certificates.
func (e *entraFake) authenticate(r *http.Request) (string, *aadError) {
	f := r.PostForm
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	client := e.clients[id]
	assertion := f.Has("client_assertion") || f.Has("client_assertion_type")

	switch {
	case client == nil:
		return "", &aadError{700016, "Application with identifier '" + id +
			"' was not found in the directory."}
	case assertion && (basic || f.Has("client_secret")):
		return "", &aadError{9002313, "Invalid request: a client secret and a client " +
			"assertion were both given; give one credential."}
	case assertion:
		if refused := e.checkAssertion(r, id, client); refused != nil {
			return "", refused
		}
		return id, nil
	case client.secret == "" || secret != client.secret:
		// A registration with certificates only has no secret to match.
		return "", &aadError{7000215, "Invalid client secret provided."}
	}
	e.auths = append(e.auths, "client_secret")
	return id, nil
}

// errUnknownThumbprint is a client assertion naming no registered
// certificate.
var errUnknownThumbprint = errors.New("no registered certificate has the assertion's thumbprint")

// checkAssertion checks a client assertion as Entra does: signed with
// RS256 or PS256 by the key of the registered certificate its header names
// by thumbprint; iss and sub the client; aud this token endpoint; valid now
// and for at most maxAssertionLife; and a jti never seen before.
func (e *entraFake) checkAssertion(r *http.Request, id string, client *entraClient) *aadError {
	if r.PostForm.Get("client_assertion_type") != jwtBearer {
		return &aadError{50027, "JWT token is invalid or malformed: " +
			"the client_assertion_type is not jwt-bearer."}
	}

	aud := e.srv.URL + "/" + r.PathValue("tenant") + "/oauth2/v2.0/token"
	var c jwt.RegisteredClaims
	keyOf := func(tok *jwt.Token) (any, error) {
		cert := client.certificate(tok.Header)
		if cert == nil {
			return nil, errUnknownThumbprint
		}
		return cert.PublicKey, nil
	}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("client_assertion"), &c, keyOf,
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithIssuer(id),
		jwt.WithSubject(id), jwt.WithAudience(aud), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt())
	if err != nil {
		return assertionRefusal(err)
	}

	// Dated, short-lived, and new.
	start := c.NotBefore
	if start == nil {
		start = c.IssuedAt
	}
	switch {
	case start == nil || c.ExpiresAt.Sub(start.Time) > maxAssertionLife:
		return &aadError{700024, "Client assertion is not within its valid time range: " +
			"it must have nbf or iat, and an exp at most 10 minutes later."}
	case c.ID == "" || e.jtis[c.ID]:
		return &aadError{50027, "JWT token is invalid or malformed: " +
			"the jti is missing or was already used."}
	}
	e.jtis[c.ID] = true
	e.auths = append(e.auths, tok.Method.Alg())
	return nil
}

// assertionRefusal returns Entra's refusal of an assertion that failed to
// parse, to verify, or a claim check.
func assertionRefusal(err error) *aadError {
	switch {
	case errors.Is(err, errUnknownThumbprint):
		return &aadError{700027, "The certificate with identifier used to sign the " +
			"client assertion is not registered on application."}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &aadError{700027, "Client assertion failed signature validation."}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidSubject):
		return &aadError{700021, "Client assertion application identifier doesn't " +
			"match 'client_id' parameter."}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &aadError{50027, "JWT token is invalid or malformed: " +
			"the audience is not this token endpoint."}
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet),
		errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &aadError{700024, "Client assertion is not within its valid time range."}
	}
	return &aadError{50027, "JWT token is invalid or malformed."}
}

// certificate returns the registration's certificate, valid now, that an
// assertion's header names by thumbprint: x5t#S256 (SHA-256) or x5t
// (SHA-1). A header with both must name the same certificate by each.
func (c *entraClient) certificate(header map[string]any) *x509.Certificate {
	s256, _ := header["x5t#S256"].(string)
	s1, _ := header["x5t"].(string)
	if s256 == "" && s1 == "" {
		return nil
	}
	now := time.Now()
	for _, cert := range c.certs {
		sum256, sum1 := sha256.Sum256(cert.Raw), sha1.Sum(cert.Raw)
		if (s256 == "" || s256 == base64.RawURLEncoding.EncodeToString(sum256[:])) &&
			(s1 == "" || s1 == base64.RawURLEncoding.EncodeToString(sum1[:])) &&
			now.After(cert.NotBefore) && now.Before(cert.NotAfter) {
			return cert
		}
	}
	return nil
}

func (e *entraFake) idToken(g *oauthGrant) string {
	now := time.Now()
	iss := e.srv.URL + "/" + g.user.TenantID + "/v2.0"
	if e.forgeIssuer {
		iss = e.srv.URL + "/" + fabrikamTenant + "/v2.0"
	}
	tok, err := e.keys.SignJWT(jwt.MapClaims{
		"aud": g.client, "iss": iss, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "name": g.user.Name, "oid": g.user.ObjectID,
		"preferred_username": g.user.UPN, "sub": "sub-" + g.user.ObjectID,
		"tid": g.user.TenantID, "nonce": g.nonce, "ver": "2.0", "uti": "uti-1", "rh": "0.rh",
	})
	if err != nil {
		e.t.Error(err)
	}
	return tok
}

// githubFake answers like GitHub's OAuth app endpoints and REST API: the
// authorization page (the user approves), the token endpoint (one-time
// codes, the client secret, the PKCE verifier; errors as 200 answers with
// an error field; form-encoded unless JSON is asked for), and /user for a
// token, which needs a User-Agent.
type githubFake struct {
	t        *testing.T
	srv      *httptest.Server
	clientID string
	secret   string

	mu       sync.Mutex
	redirect string
	login    string
	grants   map[string]*oauthGrant
	tokens   map[string]bool
}

func newGitHubFake(t *testing.T, clientID, secret string) *githubFake {
	t.Helper()
	g := &githubFake{t: t, clientID: clientID, secret: secret,
		grants: map[string]*oauthGrant{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/v3/user", g.user)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// lastLogin returns the login hint of the last authorization request.
func (g *githubFake) lastLogin() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.login
}

func (g *githubFake) authorize(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := r.URL.Query()
	if q.Get("client_id") != g.clientID || q.Get("redirect_uri") != g.redirect {
		http.Error(w, "The redirect_uri is not associated with this application.", http.StatusBadRequest)
		return
	}
	g.login = q.Get("login")
	code := fmt.Sprintf("%020d", len(g.grants)+1)
	g.grants[code] = &oauthGrant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
		scope: q.Get("scope")}
	back, _ := url.Parse(g.redirect)
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (g *githubFake) token(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = r.ParseForm()
	f := r.PostForm
	gr := g.grants[f.Get("code")]
	var vals url.Values
	switch {
	case f.Get("client_id") != g.clientID || f.Get("client_secret") != g.secret:
		vals = url.Values{"error": {"incorrect_client_credentials"}}
	case gr == nil || gr.used || (gr.challenge != "" && pkceS256(f.Get("code_verifier")) != gr.challenge):
		vals = url.Values{"error": {"bad_verification_code"},
			"error_description": {"The code passed is incorrect or expired."}}
	default:
		gr.used = true
		tok := "gho_" + f.Get("code")
		g.tokens[tok] = true
		vals = url.Values{"access_token": {tok}, "token_type": {"bearer"},
			"scope": {strings.ReplaceAll(gr.scope, " ", ",")}}
	}
	if r.Header.Get("Accept") == "application/json" {
		out := map[string]string{}
		for k := range vals {
			out[k] = vals.Get(k)
		}
		idpJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(vals.Encode()))
}

func (g *githubFake) user(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if r.Header.Get("User-Agent") == "" {
		http.Error(w, "Request forbidden by administrative rules.", http.StatusForbidden)
		return
	}
	if !g.tokens[tok] {
		idpJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	idpJSON(w, http.StatusOK, map[string]any{"login": "octocat", "id": 583231,
		"node_id": "MDQ6VXNlcjU4MzIzMQ==", "name": "The Octocat", "type": "User"})
}
