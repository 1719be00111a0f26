// Package oauth is the oauth flow: an OAuth 2.0 authorization code grant
// with PKCE (S256) and state, and for OpenID Connect providers a nonce and a
// verified ID token (RFC 6749, RFC 7636, OpenID Connect Core 1.0).
//
// A Provider sends the browser to the identity provider when a user opens a
// link, takes the browser back at {prefix}/callback, exchanges the code, and
// hands the engine the tokens as the flow's result, which the bot receives
// once through the verify API.
//
// Once the code is spent, a check that cannot reach the provider (a key set
// that cannot be fetched after a key rotation, a user endpoint that is
// down) does not fail the flow: the token response is kept in the flow's
// sealed state and the flow waits. The Provider is a flow.Rechecker: the
// engine has it run the same checks on the kept response when the browser
// refreshes its waiting page, until the provider answers.
//
// Presets cover Microsoft Entra ID, Google and GitHub; any other provider is
// configured by its OpenID Connect issuer or by its OAuth 2.0 endpoints. The
// package imports nothing of Caddy.
package oauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Presets of well-known providers.
const (
	PresetEntra  = "entra"
	PresetGoogle = "google"
	PresetGitHub = "github"
)

// Errors a caller can test with errors.Is.
var (
	// ErrConfig means a Config is incomplete or contradicts itself.
	ErrConfig = errors.New("oauth: invalid configuration")
	// ErrScopeNotAllowed means a link asked for a scope the flow is not
	// configured with: a link may narrow the scopes, never widen them.
	ErrScopeNotAllowed = errors.New("oauth: scope not allowed")
	// ErrLinkData means a link's data is not what an oauth flow takes.
	ErrLinkData = errors.New("oauth: bad link data")
)

// Defaults of a Config.
const (
	// DefaultTimeout bounds each request to the provider.
	DefaultTimeout = 10 * time.Second
	// maxBody bounds every answer read from the provider.
	maxBody = 1 << 20
)

// Config configures a Provider. ClientID, one credential (ClientSecret or
// ClientKey) and one way to find the provider are required: a Preset, an
// Issuer, or AuthURL and TokenURL.
type Config struct {
	// Preset names a well-known provider: PresetEntra, PresetGoogle or
	// PresetGitHub.
	Preset string
	// Tenant is the Entra tenant: its ID, a verified domain such as
	// contoso.onmicrosoft.com, or common, organizations or consumers.
	Tenant string
	// EntraAuthority is the Microsoft identity platform's host, for
	// national clouds. Default: https://login.microsoftonline.com.
	EntraAuthority string
	// GitHubURL is GitHub's web address, for GitHub Enterprise Server.
	// Default: https://github.com.
	GitHubURL string
	// GitHubAPIURL is the base of GitHub's REST API. Default:
	// https://api.github.com, or GitHubURL + /api/v3 when GitHubURL is set.
	GitHubAPIURL string

	// Issuer is an OpenID Connect issuer, whose discovery document is read
	// on first use.
	Issuer string
	// AuthURL and TokenURL are the endpoints of a plain OAuth 2.0
	// provider; UserinfoURL, if set, is read with the access token and its
	// JSON object becomes the result's user.
	AuthURL     string
	TokenURL    string
	UserinfoURL string

	// ClientID is the client's ID at the provider.
	ClientID string
	// ClientSecret is the client's secret at the provider, sent to the
	// token endpoint. Give it or ClientKey, not both.
	ClientSecret string
	// ClientKey is the client's private key, registered at the provider
	// (for Entra, as a certificate, which ClientCertificate must then be):
	// instead of a secret, the client sends the token endpoint an
	// assertion it signs with the key, which lives 5 minutes
	// (private_key_jwt; RFC 7523). RSA of 2048 bits or more, or ECDSA
	// P-256. GitHub takes a secret only.
	ClientKey crypto.Signer
	// ClientKeyAlg is the assertions' algorithm: RS256 or PS256 for an RSA
	// key, ES256 for ECDSA. Default: RS256 for RSA, ES256 for ECDSA.
	ClientKeyAlg string
	// ClientKeyID, if set, is the assertions' kid, for providers that hold
	// several keys of the client.
	ClientKeyID string
	// ClientCertificate, if set, is ClientKey's certificate as registered
	// at the provider. Its SHA-1 and SHA-256 thumbprints go in the
	// assertions' header as x5t and x5t#S256, by which Entra finds the key.
	ClientCertificate *x509.Certificate
	// Scopes are requested unless a link narrows them. OpenID Connect
	// flows always request openid. Default: openid profile email for
	// OpenID Connect, read:user for GitHub, none otherwise.
	Scopes []string
	// AuthParams are further parameters of the authorization request, like
	// prompt or access_type. The parameters this package sets are refused.
	AuthParams map[string]string

	// HTTPClient makes the requests to the provider. Default: a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// Now is the clock ID tokens are checked against and client assertions
	// are dated by. Default: time.Now.
	Now func() time.Time
	// Rand is the source of state secrets, PKCE verifiers, nonces and the
	// client assertions' jti. Default: crypto/rand.Reader.
	Rand io.Reader
	// Logger receives the provider's logs; they never carry a token, a
	// code, a secret or a provider's text. Default: discard.
	Logger *slog.Logger
}

// A Provider runs oauth flows against one identity provider. It implements
// flow.Provider, flow.Returner and flow.Validator, and is safe for
// concurrent use.
type Provider struct {
	name         string
	clientID     string
	clientSecret string
	// assertion is set for a client with a key instead of a secret.
	assertion  *assertion
	scopes     []string
	authParams map[string]string

	// discovery is set for OpenID Connect providers; plain OAuth 2.0
	// providers have their endpoint fixed.
	discovery *discovery
	endpoint  oauth2.Endpoint
	// userURL is read with the access token for the result's user.
	userURL string
	github  bool

	client *http.Client
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger

	// returning holds the flows whose callback is being handled, so that a
	// doubled callback does not spend the code twice. It holds within one
	// process; across instances, the request whose exchange is refused as
	// spent returns a contested failure instead (see Return).
	returning sync.Map
}

// New checks cfg, fills in defaults and returns a Provider. It makes no
// request: an OpenID Connect provider is discovered on first use, so that
// the server starts while the provider is down.
func New(cfg Config) (*Provider, error) {
	p := &Provider{
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		authParams:   cfg.AuthParams,
		client:       cfg.HTTPClient,
		now:          cfg.Now,
		rand:         cfg.Rand,
		log:          cfg.Logger,
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: DefaultTimeout}
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}

	if err := p.locate(&cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := p.checkClient(&cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return p, nil
}

// checkClient checks the credentials, scopes and further parameters.
func (p *Provider) checkClient(cfg *Config) error {
	if cfg.ClientID == "" {
		return errors.New("a client ID is required")
	}
	if err := p.checkCredential(cfg); err != nil {
		return err
	}
	for name := range cfg.AuthParams {
		if reservedParams[name] {
			return fmt.Errorf("auth parameter %q is set by the flow itself", name)
		}
	}

	p.scopes = slices.Clone(cfg.Scopes)
	if len(p.scopes) == 0 {
		p.scopes = p.defaultScopes()
	}
	if p.discovery != nil && !slices.Contains(p.scopes, scopeOpenID) {
		p.scopes = append([]string{scopeOpenID}, p.scopes...)
	}
	for _, s := range p.scopes {
		if !validScope(s) {
			return fmt.Errorf("scope %q is not a valid OAuth scope", s)
		}
	}
	return nil
}

// checkCredential checks that the client has a secret or a key, not both,
// and sets up the key's assertions.
func (p *Provider) checkCredential(cfg *Config) error {
	keyed := cfg.ClientKeyAlg != "" || cfg.ClientKeyID != "" || cfg.ClientCertificate != nil
	switch {
	case cfg.ClientSecret != "" && cfg.ClientKey != nil:
		return errors.New("give a client secret or a client key, not both")
	case cfg.ClientKey != nil && p.github:
		return errors.New("GitHub takes a client secret, not a client key")
	case cfg.ClientKey != nil && cfg.Preset == PresetEntra && cfg.ClientCertificate == nil:
		return errors.New("Entra finds a client key by its certificate: give the certificate too")
	case cfg.ClientKey != nil:
		var err error
		p.assertion, err = newAssertion(cfg)
		return err
	case keyed:
		return errors.New("a client key's algorithm, ID and certificate need a client key")
	case cfg.ClientSecret == "":
		return errors.New("a client secret or a client key is required")
	}
	return nil
}

// reservedParams are the authorization request's parameters this package
// sets; an operator's auth parameter must not replace them.
var reservedParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true,
	"state": true, "code_challenge": true, "code_challenge_method": true,
	"nonce": true, "login_hint": true, "login": true, "response_mode": true,
}

const scopeOpenID = "openid"

func (p *Provider) defaultScopes() []string {
	switch {
	case p.discovery != nil:
		return []string{scopeOpenID, "profile", "email"}
	case p.github:
		return []string{"read:user"}
	}
	return nil
}

// Kind implements flow.Provider.
func (p *Provider) Kind() string { return flow.KindOAuth }

// Name is the provider's name in results: entra, google, github, oidc or
// oauth2.
func (p *Provider) Name() string { return p.name }

// Scopes returns the configured scopes.
func (p *Provider) Scopes() []string { return slices.Clone(p.scopes) }

// httpContext returns ctx carrying the provider's HTTP client, as
// golang.org/x/oauth2 expects it.
func (p *Provider) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// Interface guards
var (
	_ flow.Provider      = (*Provider)(nil)
	_ flow.Returner      = (*Provider)(nil)
	_ flow.Validator     = (*Provider)(nil)
	_ flow.EarlyBeginner = (*Provider)(nil)
)
