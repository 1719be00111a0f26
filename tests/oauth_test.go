package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Credentials of the test clients at the fake providers.
const (
	idpClientSecret    = "idp-client-secret-7f3a"
	lateClientSecret   = "late-client-secret-91bc"
	entraClientSecret  = "entra-client-secret-4d2e"
	githubClientSecret = "github-client-secret-c0de"
)

// oauthEnv is one Caddy whose handler has an oauth flow per fake provider:
// idp (mockoidc by issuer), late (an issuer that is not running when Caddy
// starts), entra (one tenant, by domain), entra_orgs (any work or school
// tenant) and github, and any flows a test adds, with a webhook to the bot.
type oauthEnv struct {
	caddy  *Caddy
	base   string
	bot    *botkit.Client
	hooks  *hookReceiver
	idp    *mockIdP
	late   *mockIdP
	lateAt string
	entra  *entraFake
	github *githubFake
}

// newOAuthEnv starts the fakes and Caddy. Each of more returns further
// oauth blocks for the handler, given the fakes.
func newOAuthEnv(t *testing.T, more ...func(e *oauthEnv) string) *oauthEnv {
	t.Helper()
	e := &oauthEnv{
		hooks:  newHookReceiver(),
		idp:    newMockIdP(t, "idp-client", idpClientSecret).start("127.0.0.1:0"),
		late:   newMockIdP(t, "late-client", lateClientSecret),
		lateAt: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		entra:  newEntraFake(t, "entra-client", entraClientSecret),
		github: newGitHubFake(t, "github-client", githubClientSecret),
	}
	hookSrv := httptest.NewServer(e.hooks)
	t.Cleanup(hookSrv.Close)

	var flows strings.Builder
	for _, m := range more {
		flows.WriteString(m(e))
	}
	env := append(slices.Clone(botEnv),
		"IDP_CLIENT_SECRET="+idpClientSecret, "LATE_CLIENT_SECRET="+lateClientSecret,
		"ENTRA_CLIENT_SECRET="+entraClientSecret, "GITHUB_CLIENT_SECRET="+githubClientSecret)
	e.caddy = startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		pages {
			bot_name "Test Bot"
		}
		oauth idp {
			issuer %s
			client_id idp-client
			client_secret {env.IDP_CLIENT_SECRET}
			scopes openid profile email groups
		}
		oauth late {
			issuer http://%s/oidc
			client_id late-client
			client_secret {env.LATE_CLIENT_SECRET}
		}
		oauth entra {
			preset entra contoso.onmicrosoft.com
			authority %s
			client_id entra-client
			client_secret {env.ENTRA_CLIENT_SECRET}
			scopes openid profile offline_access Calendars.ReadWrite
		}
		oauth entra_orgs {
			preset entra organizations
			authority %[4]s
			client_id entra-client
			client_secret {env.ENTRA_CLIENT_SECRET}
		}
		oauth github {
			preset github
			github_url %s
			client_id github-client
			client_secret {env.GITHUB_CLIENT_SECRET}
			scopes read:user user:email
		}
%s		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	respond "the site"
}
`, port, e.idp.issuer(), e.lateAt, e.entra.srv.URL, e.github.srv.URL, flows.String(),
			hookSrv.URL+"/hook")
	}, env...)

	callback := e.caddy.URL + "/handoff/callback"
	e.idp.redirectURI, e.late.redirectURI = callback, callback
	e.entra.redirect, e.github.redirect = callback, callback
	e.base = e.caddy.URL + "/handoff"
	e.bot = bot(t, e.base)
	return e
}

// link signs a link for flow and user.
func (e *oauthEnv) link(t *testing.T, name string, ref flow.Ref, data map[string]any) string {
	t.Helper()
	link, err := e.bot.Link(name, ref, data, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func (e *oauthEnv) status(t *testing.T, ref flow.Ref) flow.Status {
	t.Helper()
	st, err := e.bot.Status(context.Background(), ref.Key())
	if err != nil {
		t.Fatal(err)
	}
	return st.Status
}

// signInBrowser is a browser that follows redirects, to the provider and
// back, as a user's does. It keeps the URLs it was sent to, and stops
// before the callback if asked.
type signInBrowser struct {
	*browser
	trail          []*url.URL
	stopAtCallback bool
}

func newSignInBrowser(t *testing.T) *signInBrowser {
	jar, _ := cookiejar.New(nil)
	sb := &signInBrowser{}
	sb.browser = &browser{t: t, client: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			sb.trail = append(sb.trail, req.URL)
			if sb.stopAtCallback && req.URL.Path == "/handoff/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
	return sb
}

// reachCallback opens link and signs in at the provider, and returns the
// callback URL the provider sends the browser to, without going there.
func (sb *signInBrowser) reachCallback(link string) string {
	sb.t.Helper()
	sb.stopAtCallback = true
	defer func() { sb.stopAtCallback = false }()
	resp, body := sb.open(link)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/handoff/callback?") {
		sb.t.Fatalf("no callback from the provider: %d %q: %s", resp.StatusCode, loc, body)
	}
	return loc
}

// visited returns the first URL of the trail on host.
func (sb *signInBrowser) visited(host string) *url.URL {
	for _, u := range sb.trail {
		if u.Host == host {
			return u
		}
	}
	return nil
}

// oauthResult is the verify API's result of an oauth flow.
type oauthResult struct {
	Provider     string         `json:"provider"`
	AccessToken  string         `json:"accessToken"`
	RefreshToken string         `json:"refreshToken"`
	TokenType    string         `json:"tokenType"`
	ExpiresAt    time.Time      `json:"expiresAt"`
	Scopes       []string       `json:"scopes"`
	IDToken      string         `json:"idToken"`
	Claims       map[string]any `json:"claims"`
	User         map[string]any `json:"user"`
}

// verify checks the number with the bot API and returns the result.
func (e *oauthEnv) verify(t *testing.T, ref flow.Ref, code string) *oauthResult {
	t.Helper()
	res, err := e.bot.Verify(context.Background(), ref.Key(), code)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var r oauthResult
	if err := json.Unmarshal(res.Result, &r); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	return &r
}

func TestOAuthSignInThroughCaddy(t *testing.T) {
	e := newOAuthEnv(t)
	alice := refFor("alice")
	link := e.link(t, "idp", alice, map[string]any{"loginHint": "jane.doe@example.com"})

	b := newSignInBrowser(t)
	began := time.Now()
	resp, body := b.open(link)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in ended with %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("finish page headers: %v", resp.Header)
	}

	// The browser went through the provider with PKCE, a nonce and the hint.
	idpURL, _ := url.Parse(e.idp.issuer())
	auth := b.visited(idpURL.Host)
	if auth == nil {
		t.Fatalf("the browser never reached the provider: %v", b.trail)
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" ||
		q.Get("login_hint") != "jane.doe@example.com" || q.Get("redirect_uri") != e.base+"/callback" {
		t.Errorf("authorization request: %v", q)
	}
	if st := e.status(t, alice); st != flow.StatusCompleted {
		t.Fatalf("status = %s; want completed", st)
	}

	r := e.verify(t, alice, code)
	if r.Provider != "oidc" || r.AccessToken == "" || r.RefreshToken == "" || r.TokenType != "Bearer" ||
		r.IDToken == "" {
		t.Errorf("result = %+v", r)
	}
	if d := r.ExpiresAt.Sub(began); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expiresAt = %v, %v after the start; want about 10m", r.ExpiresAt, d)
	}
	if !slices.Equal(r.Scopes, []string{"openid", "profile", "email", "groups"}) {
		t.Errorf("scopes = %v", r.Scopes)
	}
	if r.Claims["sub"] != "1234567890" || r.Claims["email"] != "jane.doe@example.com" ||
		r.Claims["iss"] != e.idp.issuer() {
		t.Errorf("claims = %v", r.Claims)
	}

	// The result is released once.
	_, err := e.bot.Verify(context.Background(), alice.Key(), code)
	if !botkit.IsCode(err, "already_finished") {
		t.Errorf("second verify: %v; want already_finished", err)
	}
	evs := e.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventCompleted || evs[0].Flow != "idp" || evs[0].Kind != "oauth" ||
		len(evs[0].Result) != 0 {
		t.Errorf("event = %+v", evs[0])
	}

	callback := b.trail[len(b.trail)-1]
	assertNoSecrets(t, e.caddy.Logs(), code, r.AccessToken, r.RefreshToken, r.IDToken,
		idpClientSecret, callback.Query().Get("code"), callback.Query().Get("state"))
}

func TestOAuthDeclinedConsent(t *testing.T) {
	e := newOAuthEnv(t)
	bob := refFor("bob")
	e.idp.set(func(p *mockIdP) { p.decline = true })

	resp, body := newSignInBrowser(t).open(e.link(t, "idp", bob, nil))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Sign-in was cancelled") {
		t.Fatalf("declined consent: %d: %s", resp.StatusCode, body)
	}
	if codePattern.MatchString(body) {
		t.Fatalf("a number was shown for a declined sign-in")
	}

	evs := e.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventFailed || evs[0].Error != "access_denied" || evs[0].Flow != "idp" {
		t.Errorf("event = %+v; want handoff.failed with access_denied", evs[0])
	}
	if st := e.status(t, bob); st != flow.StatusFailed {
		t.Errorf("status = %s; want failed", st)
	}
	if strings.Contains(e.caddy.Logs()+body, "IDP-DESCRIPTION-TEXT") {
		t.Errorf("the provider's error description was logged or shown")
	}
}

func TestOAuthCallbackRefusals(t *testing.T) {
	e := newOAuthEnv(t)
	carol := refFor("carol")

	// A link asking for more than the flow's scopes is refused.
	resp, body := newSignInBrowser(t).open(e.link(t, "idp", carol,
		map[string]any{"scopes": []string{"openid", "admin"}}))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This link does not work") {
		t.Errorf("widening link: %d: %s", resp.StatusCode, body)
	}

	b := newSignInBrowser(t)
	cb := b.reachCallback(e.link(t, "idp", carol, map[string]any{"scopes": "profile"}))

	// Another browser cannot use the callback.
	resp, body = newBrowser(t).get(cb)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Open the link from your chat") {
		t.Errorf("callback in another browser: %d: %s", resp.StatusCode, body)
	}

	// A state whose secret was changed is refused, and the flow stays open.
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	if resp, body = b.get(u.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong state: %d: %s", resp.StatusCode, body)
	}
	if st := e.status(t, carol); st != flow.StatusPending {
		t.Fatalf("status after a wrong state = %s; want pending", st)
	}

	resp, body = b.get(cb)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)

	// The same callback again is refused, in this browser or another.
	resp, body = b.get(cb)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Already finished") ||
		codePattern.MatchString(body) {
		t.Errorf("replayed callback: %d: %s", resp.StatusCode, body)
	}
	if resp, _ = newBrowser(t).get(cb); resp.StatusCode != http.StatusForbidden {
		t.Errorf("replayed callback in another browser: %d", resp.StatusCode)
	}

	r := e.verify(t, carol, code)
	if !slices.Equal(r.Scopes, []string{"openid", "profile"}) {
		t.Errorf("narrowed scopes = %v", r.Scopes)
	}
}

func TestOAuthProviderOutages(t *testing.T) {
	e := newOAuthEnv(t)

	// Caddy started while the late provider was not running. Its first
	// sign-in gets a clear page and leaves the flow pending.
	dave := refFor("dave")
	link := e.link(t, "late", dave, nil)
	b := newSignInBrowser(t)
	resp, body := b.open(link)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Please try again") {
		t.Fatalf("provider down: %d: %s", resp.StatusCode, body)
	}
	if st := e.status(t, dave); st != flow.StatusPending {
		t.Fatalf("status = %s; want pending", st)
	}

	// Once it runs, the same browser opens the link again and signs in.
	e.late.start(e.lateAt)
	resp, body = b.open(link)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the provider came up: %d: %s", resp.StatusCode, body)
	}
	if r := e.verify(t, dave, numberOn(t, body)); r.Claims["iss"] != e.late.issuer() {
		t.Errorf("claims = %v", r.Claims)
	}

	// A discovery document that answers 503 gives the same page, without
	// the provider's text.
	e.idp.set(func(p *mockIdP) { p.discoveryDown = true })
	erin := refFor("erin")
	b = newSignInBrowser(t)
	resp, body = b.open(e.link(t, "idp", erin, nil))
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "IDP-MAINTENANCE") {
		t.Fatalf("discovery down: %d: %s", resp.StatusCode, body)
	}
	e.idp.set(func(p *mockIdP) { p.discoveryDown = false })

	// With the key endpoint down, the callback stops before the code is
	// spent; reloading it once the keys are back signs in.
	e.idp.set(func(p *mockIdP) { p.keysDown = true })
	cb := b.reachCallback(e.link(t, "idp", erin, nil))
	resp, body = b.get(cb)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Please try again") {
		t.Fatalf("keys down: %d: %s", resp.StatusCode, body)
	}
	if n := e.idp.exchangeCount(); n != 0 {
		t.Fatalf("%d code exchanges while the keys were down; want none", n)
	}
	if st := e.status(t, erin); st != flow.StatusPending {
		t.Fatalf("status = %s; want pending", st)
	}
	e.idp.set(func(p *mockIdP) { p.keysDown = false })
	resp, body = b.get(cb)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reloaded callback: %d: %s", resp.StatusCode, body)
	}
	e.verify(t, erin, numberOn(t, body))
}

func TestOAuthPresetsInOneHandler(t *testing.T) {
	e := newOAuthEnv(t)

	// Entra, one tenant named by its domain.
	frank := refFor("frank")
	resp, body := newSignInBrowser(t).open(e.link(t, "entra", frank, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("entra: %d: %s", resp.StatusCode, body)
	}
	r := e.verify(t, frank, numberOn(t, body))
	if r.Provider != "entra" || r.Claims["tid"] != contosoTenant || r.Claims["oid"] != "oid-alice" ||
		r.RefreshToken == "" ||
		!slices.Contains(r.Scopes, "https://graph.microsoft.com/Calendars.ReadWrite") {
		t.Errorf("entra result = %+v", r)
	}

	// Entra, any organization: a user of another tenant signs in, and the
	// token's issuer is checked against its own tid.
	e.entra.set(func(f *entraFake) {
		f.user = idpUser{TenantID: fabrikamTenant, ObjectID: "oid-grace", Name: "Grace",
			UPN: "grace@fabrikam.com"}
	})
	grace := refFor("grace")
	resp, body = newSignInBrowser(t).open(e.link(t, "entra_orgs", grace, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("entra organizations: %d: %s", resp.StatusCode, body)
	}
	if r := e.verify(t, grace, numberOn(t, body)); r.Claims["tid"] != fabrikamTenant {
		t.Errorf("claims = %v", r.Claims)
	}

	// A token naming another tenant's issuer than its tid fails the flow.
	e.entra.set(func(f *entraFake) {
		f.user.TenantID, f.forgeIssuer = contosoTenant, true
	})
	heidi := refFor("heidi")
	resp, body = newSignInBrowser(t).open(e.link(t, "entra_orgs", heidi, nil))
	if resp.StatusCode != http.StatusBadGateway || codePattern.MatchString(body) {
		t.Errorf("forged issuer: %d: %s", resp.StatusCode, body)
	}

	// GitHub: plain OAuth 2.0, the user from the API, the hint as login.
	ivan := refFor("ivan")
	resp, body = newSignInBrowser(t).open(e.link(t, "github", ivan, map[string]any{"loginHint": "octocat"}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("github: %d: %s", resp.StatusCode, body)
	}
	r = e.verify(t, ivan, numberOn(t, body))
	if r.Provider != "github" || !strings.HasPrefix(r.AccessToken, "gho_") || r.User["login"] != "octocat" ||
		!slices.Equal(r.Scopes, []string{"read:user", "user:email"}) || r.IDToken != "" {
		t.Errorf("github result = %+v", r)
	}
	if login := e.github.lastLogin(); login != "octocat" {
		t.Errorf("GitHub got login %q; want the link's hint", login)
	}

	var failed []flow.Event
	for _, ev := range e.hooks.waitEvents(t, 4) {
		if ev.Type == flow.EventFailed {
			failed = append(failed, ev)
		}
	}
	if len(failed) != 1 || failed[0].Flow != "entra_orgs" || failed[0].Error != "invalid_id_token" {
		t.Errorf("failed events = %+v; want entra_orgs with invalid_id_token", failed)
	}
	assertNoSecrets(t, e.caddy.Logs(), entraClientSecret, githubClientSecret, r.AccessToken)
}

func TestOAuthFakeEnforcesPKCE(t *testing.T) {
	idp := newMockIdP(t, "pkce-client", "pkce-secret").start("127.0.0.1:0")
	idp.redirectURI = "http://127.0.0.1:1/handoff/callback"
	client := noRedirect(nil)
	verifier := strings.Repeat("v", 43)

	authorize := func(challenge bool) url.Values {
		q := url.Values{"client_id": {"pkce-client"}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "redirect_uri": {idp.redirectURI}}
		if challenge {
			q.Set("code_challenge", pkceS256(verifier))
			q.Set("code_challenge_method", "S256")
		}
		resp, err := client.Get(idp.m.AuthorizationEndpoint() + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query()
	}
	exchange := func(code, verifier string) int {
		form := url.Values{"client_id": {"pkce-client"}, "client_secret": {"pkce-secret"},
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {idp.redirectURI}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		resp, err := client.PostForm(idp.m.TokenEndpoint(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if q := authorize(false); q.Get("error") != "invalid_request" {
		t.Errorf("authorization without a challenge: %v; want invalid_request", q)
	}
	if st := exchange(authorize(true).Get("code"), ""); st != http.StatusUnauthorized {
		t.Errorf("exchange without a verifier: %d; want 401", st)
	}
	if st := exchange(authorize(true).Get("code"), strings.Repeat("w", 43)); st != http.StatusUnauthorized {
		t.Errorf("exchange with a wrong verifier: %d; want 401", st)
	}
	code := authorize(true).Get("code")
	if st := exchange(code, verifier); st != http.StatusOK {
		t.Errorf("exchange with the verifier: %d; want 200", st)
	}
	if st := exchange(code, verifier); st == http.StatusOK {
		t.Errorf("a code was exchanged twice")
	}
}
