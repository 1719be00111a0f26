package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// harness is a provider against a fake, with a fixed clock and randomness,
// and a flow as the engine would hand it over.
type harness struct {
	t    *testing.T
	p    *Provider
	now  time.Time
	logs *bytes.Buffer
	f    *flow.Flow
}

const testHandle = "conv0123456789abcdefghij.flow0123456789abcdefg"

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), logs: &bytes.Buffer{}}
	cfg.ClientID = or(cfg.ClientID, testClientID)
	if cfg.ClientKey == nil {
		cfg.ClientSecret = or(cfg.ClientSecret, testClientSecret)
	}
	cfg.Now = func() time.Time { return h.now }
	cfg.Rand = rand.NewChaCha8([32]byte{1})
	cfg.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: h.logs}, nil))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.f = &flow.Flow{ID: "flow0123456789abcdefg", Handle: testHandle, Name: "signin",
		Origin: "https://bot.example.com", Prefix: "/handoff"}
	return h
}

// begin runs Begin, keeping the state as the engine does, and returns the
// authorization URL.
func (h *harness) begin() string {
	h.t.Helper()
	step, err := h.p.Begin(context.Background(), h.f)
	if err != nil {
		h.t.Fatalf("begin: %v", err)
	}
	if step.State != nil {
		h.f.State = step.State
	}
	return step.Redirect
}

// callback runs Return for a callback URL.
func (h *harness) callback(u *url.URL) (*flow.Outcome, error) {
	r := httptest.NewRequest(http.MethodGet, u.String(), nil)
	return h.p.Return(context.Background(), h.f, r)
}

// result decodes a completed outcome's result.
func (h *harness) result(out *flow.Outcome, err error) *Result {
	h.t.Helper()
	if err != nil || out == nil || out.Failure != "" {
		h.t.Fatalf("outcome = %+v, %v; want a result", out, err)
	}
	var res Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		h.t.Fatal(err)
	}
	return &res
}

func wantFailure(t *testing.T, out *flow.Outcome, err error, code string) {
	t.Helper()
	if err != nil || out == nil || out.Failure != code {
		t.Fatalf("outcome = %+v, %v; want failure %q", out, err, code)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func oidcHarness(t *testing.T, cfg Config) (*harness, *fakeIdP) {
	t.Helper()
	var h *harness
	idp := newFakeIdP(t, func() time.Time { return h.now })
	if cfg.Issuer == "" && cfg.Preset == "" {
		cfg.Issuer = idp.srv.URL
	}
	h = newHarness(t, cfg)
	return h, idp
}

func TestBeginBuildsAuthorizationRequest(t *testing.T) {
	h, idp := oidcHarness(t, Config{AuthParams: map[string]string{"prompt": "select_account"}})
	h.f.Data = json.RawMessage(`{"loginHint":"jane@example.com"}`)

	if n := idp.count(&idp.discoveries); n != 0 {
		t.Fatalf("New made %d discovery requests; want none", n)
	}
	u, _ := url.Parse(h.begin())
	q := u.Query()

	st, err := openState(h.f.State)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"response_type":         "code",
		"client_id":             testClientID,
		"redirect_uri":          "https://bot.example.com/handoff/callback",
		"scope":                 "openid profile email",
		"state":                 testHandle + "." + st.Secret,
		"code_challenge":        oauth2.S256ChallengeFromVerifier(st.Verifier),
		"code_challenge_method": "S256",
		"nonce":                 st.Nonce,
		"login_hint":            "jane@example.com",
		"prompt":                "select_account",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q; want %q", k, got, v)
		}
	}
	if u.Scheme+"://"+u.Host+u.Path != idp.srv.URL+"/authorize" {
		t.Errorf("authorization endpoint = %s", u)
	}
	if st.Secret == st.Verifier || st.Nonce == st.Secret || len(st.Verifier) != 43 {
		t.Errorf("state secrets are not independent: %+v", st)
	}

	// The same browser opening the link again gets the same request.
	step, err := h.p.Begin(context.Background(), h.f)
	if err != nil || step.State != nil || step.Redirect != u.String() {
		t.Errorf("second begin = %+v, %v; want the same URL and no new state", step, err)
	}
}

func TestSignInCompletes(t *testing.T) {
	h, idp := oidcHarness(t, Config{Scopes: []string{"profile", "offline_access"}})
	out, err := h.callback(idp.authorize(h.begin()))
	res := h.result(out, err)

	if res.Provider != "oidc" || res.AccessToken != "access-code-1" || res.RefreshToken != "refresh-1" ||
		res.TokenType != "Bearer" || res.IDToken == "" {
		t.Errorf("result = %+v", res)
	}
	if !res.ExpiresAt.Equal(h.now.Add(time.Hour)) {
		t.Errorf("expiresAt = %v; want %v", res.ExpiresAt, h.now.Add(time.Hour))
	}
	if !slices.Equal(res.Scopes, []string{"openid", "profile", "offline_access"}) {
		t.Errorf("scopes = %v", res.Scopes)
	}
	var claims map[string]any
	_ = json.Unmarshal(res.Claims, &claims)
	if claims["sub"] != "user-1" || claims["email"] != "jane@example.com" {
		t.Errorf("claims = %v", claims)
	}
	if n := idp.count(&idp.discoveries); n != 1 {
		t.Errorf("%d discoveries; want 1, kept for later flows", n)
	}
}

func TestStateMismatchIsRefused(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	good := cb.Query().Get("state")

	for name, state := range map[string]string{
		"wrong secret": testHandle + ".not-the-secret",
		"no secret":    testHandle,
		"empty":        "",
		"secret alone": strings.TrimPrefix(good, testHandle+"."),
		"other handle": "conv0123456789abcdefghij.flowXXXXXXXXXXXXXXXXX." +
			strings.TrimPrefix(good, testHandle+"."),
	} {
		q := cb.Query()
		q.Set("state", state)
		bad := *cb
		bad.RawQuery = q.Encode()
		if _, err := h.callback(&bad); !errors.Is(err, flow.ErrBadRequest) {
			t.Errorf("%s: err = %v; want ErrBadRequest", name, err)
		}
	}
	if n := idp.count(&idp.exchanges); n != 0 {
		t.Fatalf("%d exchanges on a bad state; want none", n)
	}

	// A provider error with a bad state does not fail the flow either.
	q := url.Values{"state": {testHandle + ".forged"}, "error": {"access_denied"}}
	forged := &url.URL{Path: "/handoff/callback", RawQuery: q.Encode()}
	if _, err := h.callback(forged); !errors.Is(err, flow.ErrBadRequest) {
		t.Errorf("forged error callback: %v; want ErrBadRequest", err)
	}

	// The genuine callback still completes.
	h.result(h.callback(cb))
}

func TestProviderErrorFailsFlowWithCodeOnly(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	state := cb.Query().Get("state")

	for code, want := range map[string]string{
		"access_denied":         "access_denied",
		"consent_required":      "consent_required",
		"Bad <b>code</b>":       FailProvider,
		strings.Repeat("x", 41): FailProvider,
	} {
		q := url.Values{"state": {state}, "error": {code},
			"error_description": {"AADSTS65004: User declined SECRET-DESCRIPTION"}}
		out, err := h.callback(&url.URL{Path: "/handoff/callback", RawQuery: q.Encode()})
		wantFailure(t, out, err, want)
	}
	if strings.Contains(h.logs.String(), "SECRET-DESCRIPTION") {
		t.Errorf("the provider's description reached the log: %s", h.logs)
	}
}

func TestPKCEVerifierIsRequired(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())

	// A verifier that is not the one the challenge was made from is
	// refused by the provider, and the flow fails.
	st, _ := openState(h.f.State)
	st.Verifier = strings.Repeat("A", 43)
	h.f.State, _ = json.Marshal(st)
	out, err := h.callback(cb)
	wantFailure(t, out, err, FailExchange)
	if !strings.Contains(h.logs.String(), "invalid_grant") || strings.Contains(h.logs.String(), "SECRET") {
		t.Errorf("log should name the error code only: %s", h.logs)
	}
}

func TestIDTokenChecks(t *testing.T) {
	other := "nonce-of-another-sign-in"
	cases := map[string]func(*fakeIdP){
		"nonce":         func(f *fakeIdP) { f.nonce = &other },
		"audience":      func(f *fakeIdP) { f.audience = "another-client" },
		"issuer":        func(f *fakeIdP) { f.tokenIssuer = "https://evil.example.com" },
		"expired":       func(f *fakeIdP) { f.lifetime = -time.Minute },
		"unknown key":   func(f *fakeIdP) { f.signer = strangerKey() },
		"secret as key": func(f *fakeIdP) { f.signer = []byte(testClientSecret) },
		"missing":       func(f *fakeIdP) { f.noIDToken = true },
	}
	for name, bend := range cases {
		t.Run(name, func(t *testing.T) {
			h, idp := oidcHarness(t, Config{})
			idp.set(bend)
			out, err := h.callback(idp.authorize(h.begin()))
			wantFailure(t, out, err, FailInvalidIDToken)
		})
	}
}

func TestExchangeErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		h, idp := oidcHarness(t, Config{})
		cb := idp.authorize(h.begin())
		h.result(h.callback(cb))
		h.f.State = nil
		// The code is spent: a second exchange is refused.
		cb2 := idp.authorize(h.begin())
		q := cb2.Query()
		q.Set("code", cb.Query().Get("code"))
		cb2.RawQuery = q.Encode()
		out, err := h.callback(cb2)
		wantFailure(t, out, err, FailExchange)
		if !out.Contested {
			t.Errorf("a spent code's failure is not contested")
		}
	})
	t.Run("server error leaves the flow pending", func(t *testing.T) {
		h, idp := oidcHarness(t, Config{})
		cb := idp.authorize(h.begin())
		idp.set(func(f *fakeIdP) { f.tokenStatus, f.tokenError = 503, "temporarily_unavailable" })
		if _, err := h.callback(cb); !errors.Is(err, flow.ErrProviderUnavailable) {
			t.Fatalf("err = %v; want ErrProviderUnavailable", err)
		}
		idp.set(func(f *fakeIdP) { f.tokenStatus = 0 })
		h.result(h.callback(cb))
	})
	t.Run("unreachable", func(t *testing.T) {
		h, idp := oidcHarness(t, Config{})
		cb := idp.authorize(h.begin())
		h.p.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				return nil, errors.New("connection refused")
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
		if _, err := h.callback(cb); !errors.Is(err, flow.ErrProviderUnavailable) {
			t.Fatalf("err = %v; want ErrProviderUnavailable", err)
		}
	})
}

func TestOnlyASpentCodeIsContested(t *testing.T) {
	// A doubled callback's second exchange is refused with invalid_grant:
	// the first may have redeemed the code.
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	h.result(h.callback(cb))
	out, err := h.callback(cb)
	wantFailure(t, out, err, FailExchange)
	if !out.Contested {
		t.Errorf("invalid_grant: outcome %+v; want contested", out)
	}

	// Any other refusal fails the flow at once.
	for _, code := range []string{"invalid_client", "unauthorized_client", "invalid_request",
		"invalid_scope", "unsupported_grant_type", "bad_verification_code"} {
		h, idp := oidcHarness(t, Config{})
		cb := idp.authorize(h.begin())
		idp.set(func(f *fakeIdP) { f.tokenStatus, f.tokenError = http.StatusBadRequest, code })
		out, err := h.callback(cb)
		wantFailure(t, out, err, FailExchange)
		if out.Contested {
			t.Errorf("%s: outcome %+v; want not contested", code, out)
		}
	}
}

func TestGitHubSpentCodeIsContested(t *testing.T) {
	// GitHub calls a spent code bad_verification_code.
	gh := newFakeGitHub(t)
	h := newHarness(t, Config{Preset: PresetGitHub, GitHubURL: gh.srv.URL})
	cb := gh.authorize(h.begin())
	h.result(h.callback(cb))
	out, err := h.callback(cb)
	wantFailure(t, out, err, FailExchange)
	if !out.Contested {
		t.Errorf("bad_verification_code: outcome %+v; want contested", out)
	}

	// A wrong secret is not.
	h = newHarness(t, Config{Preset: PresetGitHub, GitHubURL: gh.srv.URL, ClientSecret: "wrong"})
	out, err = h.callback(gh.authorize(h.begin()))
	wantFailure(t, out, err, FailExchange)
	if out.Contested {
		t.Errorf("incorrect_client_credentials: outcome %+v; want not contested", out)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestScopesNarrowNeverWiden(t *testing.T) {
	h, idp := oidcHarness(t, Config{Scopes: []string{"openid", "profile", "Calendars.ReadWrite"}})
	for data, wantErr := range map[string]error{
		``:                                   nil,
		`null`:                               nil,
		`{"scopes":["Calendars.ReadWrite"]}`: nil,
		`{"scopes":"profile Calendars.ReadWrite"}`: nil,
		`{"scopes":["Mail.Read"]}`:                 ErrScopeNotAllowed,
		`{"scopes":"profile Mail.Read"}`:           ErrScopeNotAllowed,
		`{"scopes":[]}`:                            ErrLinkData,
		`{"scopes":7}`:                             ErrLinkData,
		`{"scope":["profile"]}`:                    ErrLinkData,
		`{"loginHint":"a\u0000b"}`:                 ErrLinkData,
		`[1]`:                                      ErrLinkData,
	} {
		err := h.p.ValidateData(json.RawMessage(data))
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Errorf("data %s: err = %v; want %v", data, err, wantErr)
		}
	}

	// A narrowed link asks for its scopes, with openid kept.
	h.f.Data = json.RawMessage(`{"scopes":["Calendars.ReadWrite"]}`)
	u, _ := url.Parse(h.begin())
	if got := u.Query().Get("scope"); got != "openid Calendars.ReadWrite" {
		t.Errorf("scope = %q", got)
	}
	res := h.result(h.callback(idp.authorize(u.String())))
	if !slices.Equal(res.Scopes, []string{"openid", "Calendars.ReadWrite"}) {
		t.Errorf("granted scopes = %v", res.Scopes)
	}

	// Data that no longer fits (the flow's scopes were narrowed by a
	// reload) is a bad link, not a server error.
	h.f.State, h.f.Data = nil, json.RawMessage(`{"scopes":["Mail.Read"]}`)
	if _, err := h.p.Begin(context.Background(), h.f); !errors.Is(err, flow.ErrBadToken) {
		t.Errorf("begin with stale data: %v; want ErrBadToken", err)
	}
}

func TestDiscoveryFailureLeavesFlowPending(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	idp.set(func(f *fakeIdP) { f.discoveryDown = true })

	_, err := h.p.Begin(context.Background(), h.f)
	if !errors.Is(err, flow.ErrProviderUnavailable) || !errors.Is(err, flow.ErrProvider) {
		t.Fatalf("err = %v; want ErrProviderUnavailable", err)
	}
	if strings.Contains(err.Error(), "SECRET-PAGE") {
		t.Errorf("error carries the provider's answer: %v", err)
	}

	// The failure is not kept: the next try discovers.
	idp.set(func(f *fakeIdP) { f.discoveryDown = false })
	h.result(h.callback(idp.authorize(h.begin())))

	// Once discovered, an outage of the document no longer matters.
	idp.set(func(f *fakeIdP) { f.discoveryDown = true })
	h.f.State = nil
	h.result(h.callback(idp.authorize(h.begin())))
}

func TestDiscoveryRefusesAnotherIssuer(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	idp.set(func(f *fakeIdP) { f.docIssuer = "https://impostor.example.com" })
	if _, err := h.p.Begin(context.Background(), h.f); !errors.Is(err, flow.ErrProviderUnavailable) ||
		!strings.Contains(err.Error(), "impostor") {
		t.Fatalf("err = %v; want an issuer mismatch", err)
	}
}

func TestKeyFailureStopsBeforeTheCodeIsSpent(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	idp.set(func(f *fakeIdP) { f.keysDown = true })

	if _, err := h.callback(cb); !errors.Is(err, flow.ErrProviderUnavailable) {
		t.Fatalf("err = %v; want ErrProviderUnavailable", err)
	}
	if n := idp.count(&idp.exchanges); n != 0 {
		t.Fatalf("the code was exchanged while the keys were unavailable")
	}

	// Once the keys are back, reloading the same callback completes.
	idp.set(func(f *fakeIdP) { f.keysDown = false })
	h.result(h.callback(cb))
}

func TestBodiesAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	defer srv.Close()
	h := newHarness(t, Config{Issuer: srv.URL})
	_, err := h.p.Begin(context.Background(), h.f)
	if !errors.Is(err, flow.ErrProviderUnavailable) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v; want a size refusal", err)
	}
}

func TestDoubledCallbackIsHeldOff(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	cb := idp.authorize(h.begin())
	block := make(chan struct{})
	idp.set(func(f *fakeIdP) { f.block = block })

	first := make(chan *flow.Outcome)
	go func() {
		out, _ := h.callback(cb)
		first <- out
	}()
	// Wait until the first callback is inside the exchange.
	for {
		if _, busy := h.p.returning.Load(h.f.ID); busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.callback(cb); !errors.Is(err, flow.ErrNotCompleted) {
		t.Errorf("doubled callback: %v; want ErrNotCompleted", err)
	}
	close(block)
	if out := <-first; out == nil || out.Failure != "" {
		t.Errorf("first callback = %+v", out)
	}
}

func TestEntraSingleTenant(t *testing.T) {
	var h *harness
	idp := newFakeIdP(t, func() time.Time { return h.now })
	idp.docIssuer = "https://login.example.com/" + tenantA + "/v2.0"
	h = newHarness(t, Config{Preset: PresetEntra, Tenant: "contoso.onmicrosoft.com",
		EntraAuthority: idp.srv.URL})

	res := h.result(h.callback(idp.authorize(h.begin())))
	if res.Provider != "entra" {
		t.Errorf("provider = %q", res.Provider)
	}

	// A token from another issuer fails.
	idp.set(func(f *fakeIdP) { f.tokenIssuer = "https://login.example.com/" + tenantB + "/v2.0" })
	h.f.State = nil
	out, err := h.callback(idp.authorize(h.begin()))
	wantFailure(t, out, err, FailInvalidIDToken)
}

func TestEntraMultiTenantIssuerFollowsTid(t *testing.T) {
	template := "https://login.example.com/{tenantid}/v2.0"
	cases := []struct {
		name, tid, iss string
		ok             bool
	}{
		{"own tenant", tenantA, "https://login.example.com/" + tenantA + "/v2.0", true},
		{"another tenant's issuer", tenantA, "https://login.example.com/" + tenantB + "/v2.0", false},
		{"template unfilled", tenantA, template, false},
		{"no tid", "", "https://login.example.com/" + tenantA + "/v2.0", false},
		{"tid not an ID", "common", "https://login.example.com/common/v2.0", false},
		{"other host", tenantA, "https://evil.example.com/" + tenantA + "/v2.0", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h *harness
			idp := newFakeIdP(t, func() time.Time { return h.now })
			idp.docIssuer, idp.tokenIssuer, idp.tid = template, c.iss, c.tid
			h = newHarness(t, Config{Preset: PresetEntra, Tenant: "organizations",
				EntraAuthority: idp.srv.URL})
			out, err := h.callback(idp.authorize(h.begin()))
			if c.ok {
				h.result(out, err)
				return
			}
			wantFailure(t, out, err, FailInvalidIDToken)
		})
	}
}

// entraMultiTenant returns a harness for Entra's organizations audience
// against a fake whose discovery names the {tenantid} template, and whose
// tokens come from tenantA.
func entraMultiTenant(t *testing.T) (*harness, *fakeIdP) {
	t.Helper()
	var h *harness
	idp := newFakeIdP(t, func() time.Time { return h.now })
	idp.docIssuer = "https://login.example.com/{tenantid}/v2.0"
	idp.tokenIssuer = "https://login.example.com/" + tenantA + "/v2.0"
	idp.tid = tenantA
	h = newHarness(t, Config{Preset: PresetEntra, Tenant: "organizations",
		EntraAuthority: idp.srv.URL})
	return h, idp
}

func TestEntraMultiTenantKeyIssuer(t *testing.T) {
	const (
		host     = "https://login.example.com/"
		template = host + "{tenantid}/v2.0"
		ownIss   = host + tenantA + "/v2.0"
		otherIss = host + tenantB + "/v2.0"
		byTenant = "not that of the token's tenant"
		byKey    = "not that of the signing key"
	)
	cases := []struct {
		name, keyIssuer, iss string
		refusal              string // what the log names; "" if the token passes
	}{
		{"template, own tenant", template, ownIss, ""},
		{"template, another tenant's issuer", template, otherIss, byTenant},
		{"key of the token's tenant", ownIss, ownIss, ""},
		{"key of another tenant", otherIss, ownIss, byKey},
		{"key of another host", "https://other.example.com/{tenantid}/v2.0", ownIss, byKey},
		{"no issuer member", "", ownIss, ""},
		{"no issuer member, another tenant's issuer", "", otherIss, byTenant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, idp := entraMultiTenant(t)
			idp.keyIssuer, idp.tokenIssuer = c.keyIssuer, c.iss
			out, err := h.callback(idp.authorize(h.begin()))
			if c.refusal == "" {
				h.result(out, err)
				return
			}
			wantFailure(t, out, err, FailInvalidIDToken)
			if !strings.Contains(h.logs.String(), c.refusal) {
				t.Errorf("log does not name %q: %s", c.refusal, h.logs)
			}
		})
	}
}

func TestEntraKeyIssuerFollowsRefresh(t *testing.T) {
	h, idp := entraMultiTenant(t)
	idp.keyIssuer = "https://login.example.com/" + tenantA + "/v2.0"
	h.result(h.callback(idp.authorize(h.begin())))

	// The key rotates to one that another tenant's issuer holds: a token
	// naming it makes the key set be fetched again, and the new issuer
	// member refuses the token of tenantA.
	idp.set(func(f *fakeIdP) {
		f.keyID, f.keyIssuer = "k2", "https://login.example.com/"+tenantB+"/v2.0"
	})
	h.f.State = nil
	out, err := h.callback(idp.authorize(h.begin()))
	wantFailure(t, out, err, FailInvalidIDToken)
	if n := idp.count(&idp.keyFetches); n != 2 {
		t.Errorf("key fetches = %d; want 2", n)
	}

	// Rotated again, to a key without an issuer member: the template alone
	// holds, and the token passes.
	idp.set(func(f *fakeIdP) { f.keyID, f.keyIssuer = "k3", "" })
	h.f.State = nil
	h.result(h.callback(idp.authorize(h.begin())))
}

func TestKeySetKeepsIssuerMember(t *testing.T) {
	h, idp := oidcHarness(t, Config{})
	idp.keyIssuer = "https://login.example.com/{tenantid}/v2.0"
	k := &keySet{p: h.p, url: idp.srv.URL + "/keys"}
	if err := k.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := k.held(); len(keys) != 1 || keys[0].issuer != idp.keyIssuer {
		t.Fatalf("keys = %+v; want k1 with issuer %q", keys, idp.keyIssuer)
	}

	// A key whose issuer member is no string is not used.
	const ed = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",`
	if key, ok := parseKey(json.RawMessage(ed + `"issuer":"https://a.example.com"}`)); !ok ||
		key.issuer != "https://a.example.com" {
		t.Errorf("parseKey = %+v, %v; want the key with its issuer", key, ok)
	}
	if _, ok := parseKey(json.RawMessage(ed + `"issuer":1}`)); ok {
		t.Error("key with a numeric issuer member was kept")
	}
}

func TestEntraIssuerOfDiscovery(t *testing.T) {
	const host = "https://login.microsoftonline.com/"
	cases := []struct {
		tenant, doc string
		perTenant   bool
		ok          bool
	}{
		{"common", host + "{tenantid}/v2.0", true, true},
		{"organizations", host + "{tenantid}/v2.0", true, true},
		{"consumers", host + "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", false, true},
		{tenantA, host + tenantA + "/v2.0", false, true},
		{strings.ToUpper(tenantA), host + tenantA + "/v2.0", false, true},
		{"contoso.com", host + tenantA + "/v2.0", false, true},
		{tenantA, host + tenantB + "/v2.0", false, false},
		{"contoso.com", host + "{tenantid}/v2.0", false, false},
		{"common", host + tenantA + "/v2.0", false, false},
		{"contoso.com", host + "contoso.com/v2.0", false, false},
		{"contoso.com", host + tenantA + "/", false, false},
		{"contoso.com", "https://sts.windows.net/" + tenantA + "/", false, false},
	}
	for _, c := range cases {
		rule, err := entraIssuer(c.tenant, c.doc)
		if (err == nil) != c.ok || (c.ok && (rule.value != c.doc || rule.perTenant != c.perTenant)) {
			t.Errorf("entraIssuer(%q, %q) = %+v, %v; want ok %v", c.tenant, c.doc, rule, err, c.ok)
		}
	}
}

func TestGitHub(t *testing.T) {
	gh := newFakeGitHub(t)
	h := newHarness(t, Config{Preset: PresetGitHub, GitHubURL: gh.srv.URL,
		Scopes: []string{"read:user", "user:email"}})
	h.f.Data = json.RawMessage(`{"loginHint":"octocat"}`)

	authURL := h.begin()
	if strings.Contains(authURL, "nonce=") {
		t.Errorf("a plain OAuth 2.0 request carries a nonce: %s", authURL)
	}
	res := h.result(h.callback(gh.authorize(authURL)))
	if gh.login != "octocat" {
		t.Errorf("login = %q; want the link's hint", gh.login)
	}
	if res.Provider != "github" || res.AccessToken != "gho_gh-code-1" || res.IDToken != "" ||
		!slices.Equal(res.Scopes, []string{"read:user", "user:email"}) {
		t.Errorf("result = %+v", res)
	}
	var user map[string]any
	_ = json.Unmarshal(res.User, &user)
	if user["login"] != "octocat" {
		t.Errorf("user = %s", res.User)
	}

	// GitHub refuses a spent code with a 200 answer holding an error.
	cb := gh.authorize(authURL)
	q := cb.Query()
	q.Set("code", "gh-code-1")
	cb.RawQuery = q.Encode()
	out, err := h.callback(cb)
	wantFailure(t, out, err, FailExchange)
}

func TestGitHubUserFailure(t *testing.T) {
	gh := newFakeGitHub(t)
	h := newHarness(t, Config{Preset: PresetGitHub, GitHubURL: gh.srv.URL,
		GitHubAPIURL: gh.srv.URL + "/nowhere"})
	out, err := h.callback(gh.authorize(h.begin()))
	wantFailure(t, out, err, FailUser)
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := map[string]Config{
		"nothing":           {},
		"two ways":          {Preset: PresetGoogle, Issuer: "https://idp.example.com"},
		"unknown preset":    {Preset: "okta"},
		"entra no tenant":   {Preset: PresetEntra},
		"entra bad tenant":  {Preset: PresetEntra, Tenant: "a/b"},
		"tenant not entra":  {Preset: PresetGoogle, Tenant: "x"},
		"github not github": {Issuer: "https://idp.example.com", GitHubURL: "https://ghe.example.com"},
		"http issuer":       {Issuer: "http://idp.example.com"},
		"relative issuer":   {Issuer: "/idp"},
		"token only":        {TokenURL: "https://idp.example.com/token"},
		"no client id":      {Preset: PresetGoogle, ClientID: "-"},
		"no secret":         {Preset: PresetGoogle, ClientSecret: "-"},
		"reserved param":    {Preset: PresetGoogle, AuthParams: map[string]string{"state": "x"}},
		"bad scope":         {Preset: PresetGoogle, Scopes: []string{`a"b`}},
	}
	for name, cfg := range cases {
		cfg.ClientID = strings.TrimPrefix(or(cfg.ClientID, "id"), "-")
		cfg.ClientSecret = strings.TrimPrefix(or(cfg.ClientSecret, "secret"), "-")
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v; want ErrConfig", name, err)
		}
	}

	p, err := New(Config{Preset: PresetGoogle, ClientID: "id", ClientSecret: "s",
		Scopes: []string{"email"}})
	if err != nil || !slices.Equal(p.Scopes(), []string{"openid", "email"}) {
		t.Errorf("google scopes = %v, %v; want openid added", p.Scopes(), err)
	}
	p, err = New(Config{Preset: PresetGitHub, ClientID: "id", ClientSecret: "s",
		GitHubURL: "https://ghe.example.com"})
	if err != nil || p.userURL != "https://ghe.example.com/api/v3/user" {
		t.Errorf("GitHub Enterprise user URL = %q, %v", p.userURL, err)
	}
}
