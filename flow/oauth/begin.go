package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// state is what a flow keeps between the redirect to the provider and the
// callback. The engine seals it at rest.
type state struct {
	// Secret is the part of the state parameter after the flow's handle.
	Secret string `json:"secret"`
	// Verifier is the PKCE code verifier.
	Verifier string `json:"verifier"`
	// Nonce binds the ID token to this sign-in; OpenID Connect only.
	Nonce string `json:"nonce,omitempty"`
	// Redirect is the redirect_uri sent, which the exchange repeats.
	Redirect string `json:"redirect"`
	// Scopes are the scopes requested.
	Scopes []string `json:"scopes"`
	// Tokens is the token response, kept once the code is exchanged while
	// the checks wait for the provider to be reachable again.
	Tokens *tokens `json:"tokens,omitempty"`
}

// Begin implements flow.Provider: it sends the browser to the provider's
// authorization endpoint. The state parameter is the flow's handle, a dot
// and a secret, so that the engine finds the flow from the callback and the
// provider then checks the secret. The same browser opening the link again
// gets the same state, so either tab may finish.
func (p *Provider) Begin(ctx context.Context, f *flow.Flow) (*flow.Step, error) {
	d, err := p.parseData(f.Data)
	if err != nil {
		// The engine checked the data when the flow started; only a
		// reload that narrowed the flow's scopes since gets here.
		return nil, fmt.Errorf("%w: %w", flow.ErrBadToken, err)
	}
	st, fresh, err := p.stateFor(f, d)
	if err != nil {
		return nil, err
	}
	ep, err := p.endpointFor(ctx)
	if err != nil {
		return nil, err
	}

	conf := p.config(ep, st)
	step := &flow.Step{Redirect: conf.AuthCodeURL(f.Handle+"."+st.Secret, p.authOptions(st, d)...)}
	if fresh {
		if step.State, err = json.Marshal(st); err != nil {
			return nil, fmt.Errorf("encoding state: %w", err)
		}
	}
	return step, nil
}

// BeginsEarly implements flow.EarlyBeginner: Begin makes nothing at the
// provider (it reads the discovery document at most, which is cached), so
// the engine may ask it before it stores a new flow, and store the state
// with the flow in one write.
func (p *Provider) BeginsEarly() {}

// stateFor returns the flow's state: the one kept from an earlier Begin, or
// a fresh one, which fresh reports.
func (p *Provider) stateFor(f *flow.Flow, d *linkData) (st *state, fresh bool, err error) {
	if f.State != nil {
		st, err = openState(f.State)
		return st, false, err
	}

	st = &state{
		Secret:   random(p.rand),
		Verifier: random(p.rand),
		Redirect: f.URL("/callback"),
		Scopes:   p.scopesFor(d),
	}
	if p.discovery != nil {
		st.Nonce = random(p.rand)
	}
	return st, true, nil
}

func openState(b []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.Secret == "" || st.Verifier == "" {
		return nil, fmt.Errorf("%w: oauth state of the flow is unreadable", flow.ErrBadRequest)
	}
	return &st, nil
}

// matches reports whether a callback's state parameter is the flow's
// handle and its secret, comparing the secret in constant time.
func (st *state) matches(handle, param string) bool {
	secret, ok := strings.CutPrefix(param, handle+".")
	return ok && subtle.ConstantTimeCompare([]byte(secret), []byte(st.Secret)) == 1
}

// random returns 32 bytes from rnd, base64url-encoded: the form RFC 7636
// recommends for a PKCE verifier, and what oauth2.GenerateVerifier makes
// from crypto/rand. It reads from the provider's source so tests can fix it.
func random(rnd io.Reader) string {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		// crypto/rand does not fail on supported platforms; an injected
		// reader that does is a broken test.
		panic(fmt.Sprintf("oauth: reading randomness: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// endpointFor returns the provider's endpoints, discovering them for OpenID
// Connect.
func (p *Provider) endpointFor(ctx context.Context) (oauth2.Endpoint, error) {
	if p.discovery == nil {
		return p.endpoint, nil
	}
	m, err := p.discovery.get(p.httpContext(ctx))
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	return m.endpoint, nil
}

// config returns the oauth2 configuration of one sign-in.
func (p *Provider) config(ep oauth2.Endpoint, st *state) *oauth2.Config {
	if p.assertion != nil {
		// The assertion goes in the body, where client_id joins it and no
		// secret does. Set, not detected: detecting would try the header
		// first and then send the same assertion, and its jti, twice.
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.clientID,
		ClientSecret: p.clientSecret,
		Endpoint:     ep,
		RedirectURL:  st.Redirect,
		Scopes:       st.Scopes,
	}
}

// authOptions returns the authorization request's parameters beyond those
// of oauth2.Config: PKCE, the nonce, the login hint and the operator's.
func (p *Provider) authOptions(st *state, d *linkData) []oauth2.AuthCodeOption {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(st.Verifier)}
	if st.Nonce != "" {
		opts = append(opts, oidc.Nonce(st.Nonce))
	}
	if d.LoginHint != "" {
		hint := "login_hint"
		if p.github {
			hint = "login"
		}
		opts = append(opts, oauth2.SetAuthURLParam(hint, d.LoginHint))
	}
	for name, value := range p.authParams {
		opts = append(opts, oauth2.SetAuthURLParam(name, value))
	}
	return opts
}
