package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/oauth"
)

func init() {
	caddy.RegisterModule(OAuthFlow{})
}

// OAuthFlow signs the user in with an OAuth 2.0 or OpenID Connect provider:
// Microsoft Entra ID, Google, GitHub, or any other. The user is sent to the
// provider and comes back to {prefix}/callback, which must be registered at
// the provider as a redirect URI, like https://example.com/handoff/callback.
// The code is exchanged with PKCE; for OpenID Connect the ID token is
// verified. The bot receives the tokens, the granted scopes and the ID
// token's claims (for GitHub, the user) once, through the verify API.
//
// Give exactly one of: a preset, an issuer, or auth_url and token_url; and
// one credential: client_secret, or client_key.
type OAuthFlow struct {
	FlowCommon

	// Preset names a well-known provider: entra (with Tenant), google or
	// github.
	Preset string `json:"preset,omitempty"`
	// Tenant is the Entra tenant for preset entra: the tenant ID, a
	// verified domain like contoso.onmicrosoft.com, or a multi-tenant
	// sign-in audience: organizations (any work or school account), common
	// (those and personal Microsoft accounts) or consumers (personal
	// accounts only). Multi-tenant tokens are checked to name the tenant
	// that issued them, and the bot must decide which tenants it serves
	// from the tid claim.
	Tenant string `json:"tenant,omitempty"`
	// Authority is the Microsoft identity platform's host for preset entra,
	// for national clouds, like https://login.microsoftonline.us.
	// Default: https://login.microsoftonline.com.
	Authority string `json:"authority,omitempty"`
	// GitHubURL is GitHub's web address for preset github, for GitHub
	// Enterprise Server. Default: https://github.com.
	GitHubURL string `json:"github_url,omitempty"`
	// GitHubAPIURL is GitHub's REST API base for preset github.
	// Default: https://api.github.com, or github_url followed by /api/v3
	// when github_url is set.
	GitHubAPIURL string `json:"github_api_url,omitempty"`

	// Issuer is the issuer URL of any OpenID Connect provider, like
	// https://idp.example.com/realms/main. Its discovery document is read
	// on first use, so Caddy starts even while the provider is down.
	Issuer string `json:"issuer,omitempty"`
	// AuthURL and TokenURL are the endpoints of a plain OAuth 2.0
	// provider. No ID token is verified for such a provider.
	AuthURL  string `json:"auth_url,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
	// UserinfoURL, with auth_url and token_url, is read with the access
	// token; its JSON object goes to the bot as the result's user.
	UserinfoURL string `json:"userinfo_url,omitempty"`

	// ClientID is the client (application) ID registered at the provider.
	// It may be {env.NAME}.
	ClientID string `json:"client_id"`
	// ClientSecret is the client secret registered at the provider. Use
	// {env.NAME} or {file.PATH} to keep it out of the config. Give it or
	// client_key, not both.
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientKey is the path of a PEM file with a private key registered at
	// the provider, for the flow to authenticate with instead of a secret:
	// at each code exchange it signs an assertion that lives 5 minutes
	// (private_key_jwt). The key is RSA of 2048 bits or more, or ECDSA
	// P-256, in PKCS #8, PKCS #1 or SEC 1 form, not encrypted. Microsoft
	// Entra ID takes it as a certificate credential: upload the
	// certificate to the app registration and give it here as
	// client_certificate too. Okta, Auth0 and Keycloak take it as well;
	// Google and GitHub take a secret only.
	ClientKey string `json:"client_key,omitempty"`
	// ClientKeyAlg is the assertion's signature algorithm: RS256 or PS256
	// for an RSA key, ES256 for ECDSA. Default: RS256 for an RSA key,
	// ES256 for ECDSA.
	ClientKeyAlg string `json:"client_key_alg,omitempty"`
	// ClientKeyID, if set, is the assertion's kid, for providers that hold
	// several keys of the client and find the one by its ID.
	ClientKeyID string `json:"client_key_id,omitempty"`
	// ClientCertificate is the path of a PEM file with client_key's
	// certificate, as uploaded to the provider; it may be the same file as
	// client_key. Its thumbprints go in each assertion (x5t, x5t#S256),
	// which is how Entra finds the key, so Entra needs it. Its public key
	// must be client_key's. Default: none.
	ClientCertificate string `json:"client_certificate,omitempty"`
	// Scopes are requested at every sign-in; a link may narrow them but
	// never widen them. OpenID Connect flows always request openid.
	// Default: openid profile email for OpenID Connect, read:user for
	// GitHub, none for plain OAuth 2.0.
	Scopes []string `json:"scopes,omitempty"`
	// AuthParams are further parameters of the authorization request, like
	// prompt select_account, or access_type offline for a Google refresh
	// token. Parameters the flow sets itself (state, scope, nonce, PKCE,
	// redirect_uri, login_hint) are refused.
	AuthParams map[string]string `json:"auth_params,omitempty"`
	// Timeout bounds each request to the provider. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	provider *oauth.Provider
}

// CaddyModule returns the Caddy module information.
func (OAuthFlow) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.flows.oauth",
		New: func() caddy.Module { return new(OAuthFlow) },
	}
}

// Provision resolves the placeholders in the settings and the secret, reads
// the client key and certificate, and sets up the provider. It makes no request to the provider.
func (o *OAuthFlow) Provision(ctx caddy.Context) error {
	if err := o.checkName("oauth"); err != nil {
		return err
	}
	if o.Timeout < 0 {
		return fmt.Errorf("oauth flow %q: timeout must not be negative", o.Name)
	}
	cfg, err := o.providerConfig()
	if err != nil {
		return fmt.Errorf("oauth flow %q: %w", o.Name, err)
	}

	logger := ctx.Slogger()
	cfg.Logger = logger
	for _, u := range []string{cfg.Issuer, cfg.AuthURL, cfg.TokenURL, cfg.UserinfoURL,
		cfg.EntraAuthority, cfg.GitHubURL, cfg.GitHubAPIURL} {
		if oauth.IsLoopbackURL(u) {
			logger.Warn("provider URL uses plain http on a loopback address; "+
				"fine for a provider on this machine, never across a network",
				"flow", o.Name, "url", u)
		}
	}

	o.provider, err = oauth.New(*cfg)
	if err != nil {
		return fmt.Errorf("oauth flow %q: %w", o.Name, err)
	}
	return nil
}

// providerConfig returns the engine's configuration of the provider, with
// placeholders resolved.
func (o *OAuthFlow) providerConfig() (*oauth.Config, error) {
	cfg := &oauth.Config{
		Preset:     o.Preset,
		Scopes:     o.Scopes,
		AuthParams: o.AuthParams,
		HTTPClient: &http.Client{Timeout: durationOr(o.Timeout, oauth.DefaultTimeout)},
		Now:        time.Now,
	}
	settings := []struct {
		dst *string
		src string
	}{
		{&cfg.Tenant, o.Tenant}, {&cfg.EntraAuthority, o.Authority},
		{&cfg.GitHubURL, o.GitHubURL}, {&cfg.GitHubAPIURL, o.GitHubAPIURL},
		{&cfg.Issuer, o.Issuer}, {&cfg.AuthURL, o.AuthURL}, {&cfg.TokenURL, o.TokenURL},
		{&cfg.UserinfoURL, o.UserinfoURL}, {&cfg.ClientID, o.ClientID},
		{&cfg.ClientKeyAlg, o.ClientKeyAlg}, {&cfg.ClientKeyID, o.ClientKeyID},
	}
	for _, s := range settings {
		v, err := resolveSetting(s.src)
		if err != nil {
			return nil, err
		}
		*s.dst = v
	}

	if err := o.loadCredential(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadCredential resolves the client secret, or reads the client key and
// its certificate. The engine checks the key's type and that the
// certificate is the key's.
func (o *OAuthFlow) loadCredential(cfg *oauth.Config) error {
	switch {
	case o.ClientSecret != "" && o.ClientKey != "":
		return errors.New("give client_secret or client_key, not both")
	case o.ClientSecret == "" && o.ClientKey == "":
		return errors.New("client_secret or client_key is required")
	case o.ClientSecret != "":
		secret, err := resolveSecret(o.ClientSecret)
		if err != nil {
			return fmt.Errorf("client secret: %w", err)
		}
		cfg.ClientSecret = string(secret)
	default:
		key, err := os.ReadFile(o.ClientKey)
		if err != nil {
			return fmt.Errorf("reading client_key: %w", err)
		}
		if cfg.ClientKey, err = flow.ParsePrivateKeyPEM(key); err != nil {
			return fmt.Errorf("client_key %s: %w", o.ClientKey, err)
		}
	}

	if o.ClientCertificate == "" {
		return nil
	}
	pem, err := os.ReadFile(o.ClientCertificate)
	if err != nil {
		return fmt.Errorf("reading client_certificate: %w", err)
	}
	if cfg.ClientCertificate, err = oauth.ParseClientCertificate(pem); err != nil {
		return fmt.Errorf("client_certificate %s: %w", o.ClientCertificate, err)
	}
	return nil
}

// resolveSetting resolves {env.*} and {file.*} placeholders in a setting
// that is not secret, such as a tenant or client ID. An empty setting stays
// empty; one that resolves to nothing is an error.
func resolveSetting(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	v, err := resolveSecret(s)
	if err != nil {
		return "", fmt.Errorf("setting %q: %w", s, err)
	}
	return string(v), nil
}

// FlowConfig implements FlowModule.
func (o *OAuthFlow) FlowConfig() flow.FlowConfig { return o.flowConfig(o.provider) }

// UnmarshalCaddyfile sets up the flow from Caddyfile tokens. Syntax:
//
//	oauth NAME {
//		preset entra TENANT | preset google | preset github
//		issuer URL
//		auth_url URL
//		token_url URL
//		userinfo_url URL
//		client_id ID
//		client_secret SECRET
//		client_key FILE [alg RS256|PS256|ES256] [id KID]
//		client_certificate FILE
//		scopes SCOPE...
//		auth_params {
//			NAME VALUE
//		}
//		authority URL
//		github_url URL
//		github_api_url URL
//		timeout DURATION
//		ttl DURATION
//		enabled true|false
//	}
func (o *OAuthFlow) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // oauth
	if !d.AllArgs(&o.Name) {
		return d.ArgErr()
	}
	return parseBlock(d, o.commonParsers(map[string]func(*caddyfile.Dispenser) error{
		"preset":         o.parsePreset,
		"issuer":         func(d *caddyfile.Dispenser) error { return oneArg(d, &o.Issuer) },
		"auth_url":       func(d *caddyfile.Dispenser) error { return oneArg(d, &o.AuthURL) },
		"token_url":      func(d *caddyfile.Dispenser) error { return oneArg(d, &o.TokenURL) },
		"userinfo_url":   func(d *caddyfile.Dispenser) error { return oneArg(d, &o.UserinfoURL) },
		"client_id":      func(d *caddyfile.Dispenser) error { return oneArg(d, &o.ClientID) },
		"client_secret":  func(d *caddyfile.Dispenser) error { return oneArg(d, &o.ClientSecret) },
		"client_key":     o.parseClientKey,
		"authority":      func(d *caddyfile.Dispenser) error { return oneArg(d, &o.Authority) },
		"github_url":     func(d *caddyfile.Dispenser) error { return oneArg(d, &o.GitHubURL) },
		"github_api_url": func(d *caddyfile.Dispenser) error { return oneArg(d, &o.GitHubAPIURL) },
		"timeout":        func(d *caddyfile.Dispenser) error { return durationArg(d, &o.Timeout) },
		"scopes":         o.parseScopes,
		"auth_params":    o.parseAuthParams,
		"client_certificate": func(d *caddyfile.Dispenser) error {
			return oneArg(d, &o.ClientCertificate)
		},
	}))
}

// parsePreset reads: preset entra TENANT | preset google | preset github
func (o *OAuthFlow) parsePreset(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 2 && args[0] == oauth.PresetEntra:
		o.Preset, o.Tenant = args[0], args[1]
	case len(args) == 1 && args[0] == oauth.PresetEntra:
		return d.Err("preset entra needs a tenant: an ID, a domain, " +
			"or common, organizations, consumers")
	case len(args) == 1 && (args[0] == oauth.PresetGoogle || args[0] == oauth.PresetGitHub):
		o.Preset = args[0]
	default:
		return d.Err("preset takes entra TENANT, google or github")
	}
	return nil
}

// parseClientKey reads: client_key FILE [alg ALG] [id KID]
func (o *OAuthFlow) parseClientKey(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args)%2 != 1 {
		return d.ArgErr()
	}
	o.ClientKey = args[0]
	for i := 1; i < len(args); i += 2 {
		dst := map[string]*string{"alg": &o.ClientKeyAlg, "id": &o.ClientKeyID}[args[i]]
		switch {
		case dst == nil:
			return d.Errf("expected alg ALG or id KID after the key file, got %q", args[i])
		case *dst != "":
			return d.Errf("%s given twice", args[i])
		}
		*dst = args[i+1]
	}
	return nil
}

// parseScopes reads: scopes SCOPE...
func (o *OAuthFlow) parseScopes(d *caddyfile.Dispenser) error {
	o.Scopes = d.RemainingArgs()
	if len(o.Scopes) == 0 {
		return d.ArgErr()
	}
	return nil
}

// parseAuthParams reads a block of NAME VALUE lines.
func (o *OAuthFlow) parseAuthParams(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	o.AuthParams = map[string]string{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var value string
		if !d.AllArgs(&value) {
			return d.ArgErr()
		}
		if _, dup := o.AuthParams[name]; dup {
			return d.Errf("auth parameter %q given twice", name)
		}
		o.AuthParams[name] = value
	}
	if len(o.AuthParams) == 0 {
		return d.Err("auth_params needs a block of NAME VALUE lines")
	}
	return nil
}

// Interface guards
var (
	_ FlowModule            = (*OAuthFlow)(nil)
	_ caddy.Provisioner     = (*OAuthFlow)(nil)
	_ caddyfile.Unmarshaler = (*OAuthFlow)(nil)
)
