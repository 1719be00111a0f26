package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// discovery reads an OpenID Connect provider's discovery document on first
// use and keeps what it found. A failure is not kept: the next sign-in tries
// again, so a provider that was down when the server started, or at the
// first click, serves the next one.
type discovery struct {
	p     *Provider
	url   string
	check func(issuer string) (issuerRule, error)

	mu   sync.Mutex
	meta *metadata
}

// metadata is what discovery found.
type metadata struct {
	endpoint oauth2.Endpoint
	issuer   issuerRule
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// issuerRule is what an ID token's iss must be.
type issuerRule struct {
	// value is the issuer; with perTenant, a template holding {tenantid}.
	value     string
	perTenant bool
}

// document is the part of a discovery document this package reads.
type document struct {
	Issuer      string   `json:"issuer"`
	AuthURL     string   `json:"authorization_endpoint"`
	TokenURL    string   `json:"token_endpoint"`
	JWKSURL     string   `json:"jwks_uri"`
	Algorithms  []string `json:"id_token_signing_alg_values_supported"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

func newDiscovery(p *Provider, url string, check func(string) (issuerRule, error)) *discovery {
	return &discovery{p: p, url: url, check: check}
}

// get returns the provider's metadata, reading it if it is not known yet.
// Its errors are flow.ErrProviderUnavailable.
func (d *discovery) get(ctx context.Context) (*metadata, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta != nil {
		return d.meta, nil
	}

	m, err := d.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("discovering %s: %w: %w", d.url, flow.ErrProviderUnavailable, err)
	}
	d.meta = m
	return m, nil
}

// read fetches and checks the discovery document.
func (d *discovery) read(ctx context.Context) (*metadata, error) {
	var doc document
	if err := d.p.getJSON(ctx, d.url, nil, &doc); err != nil {
		return nil, err
	}
	rule, err := d.check(doc.Issuer)
	if err != nil {
		return nil, err
	}
	endpoints := []struct{ name, url string }{
		{"authorization endpoint", doc.AuthURL},
		{"token endpoint", doc.TokenURL},
		{"JWKS URI", doc.JWKSURL},
	}
	for _, ep := range endpoints {
		if err := checkURL(ep.name, ep.url); err != nil {
			return nil, fmt.Errorf("discovery document: %w", err)
		}
	}

	if d.p.assertion != nil && len(doc.AuthMethods) > 0 &&
		!slices.Contains(doc.AuthMethods, methodPrivateKeyJWT) {
		d.p.log.Warn("provider does not list private_key_jwt among its client "+
			"authentication methods; it will likely refuse the client key",
			slog.String("issuer", doc.Issuer))
	}

	keys := &keySet{p: d.p, url: doc.JWKSURL}
	return &metadata{
		endpoint: oauth2.Endpoint{
			AuthURL:   doc.AuthURL,
			TokenURL:  doc.TokenURL,
			AuthStyle: authStyle(doc.AuthMethods),
		},
		issuer: rule,
		keys:   keys,
		verifier: oidc.NewVerifier(rule.value, keys, &oidc.Config{
			ClientID:             d.p.clientID,
			SupportedSigningAlgs: signingAlgs(doc.Algorithms),
			// A per-tenant issuer is checked against the token's tid
			// after the other checks, in checkTenant.
			SkipIssuerCheck: rule.perTenant,
			Now:             d.p.now,
		}),
	}, nil
}

// authStyle picks how a client with a secret authenticates at the token
// endpoint (a client with a key sends its assertion in the body):
// client_secret_post where offered, as the widely used providers all take
// it; else client_secret_basic, the default of the specification.
func authStyle(methods []string) oauth2.AuthStyle {
	if slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// supportedAlgs are the signature algorithms ID tokens may use: asymmetric
// ones only, so that no client secret can pass for a signing key.
var supportedAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// signingAlgs returns the provider's algorithms this package accepts, or
// RS256, which OpenID Connect requires every provider to support.
func signingAlgs(offered []string) []string {
	var algs []string
	for _, a := range offered {
		if slices.Contains(supportedAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return []string{oidc.RS256}
	}
	return algs
}
