package oauth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
)

// Defaults of the presets.
const (
	DefaultEntraAuthority = "https://login.microsoftonline.com"
	DefaultGitHubURL      = "https://github.com"
	DefaultGitHubAPIURL   = "https://api.github.com"
	GoogleIssuer          = "https://accounts.google.com"
)

// Entra's multi-tenant sign-in audiences. Tokens from them come from the
// user's own tenant, so their issuer is checked against the token's tid.
const (
	tenantCommon        = "common"
	tenantOrganizations = "organizations"
	tenantConsumers     = "consumers"
)

// locate finds the provider from cfg: a preset, an issuer, or explicit
// endpoints, exactly one of them.
func (p *Provider) locate(cfg *Config) error {
	explicit := cfg.AuthURL != "" || cfg.TokenURL != "" || cfg.UserinfoURL != ""
	ways := 0
	for _, set := range []bool{cfg.Preset != "", cfg.Issuer != "", explicit} {
		if set {
			ways++
		}
	}
	switch {
	case ways == 0:
		return errors.New("a preset, an issuer, or auth and token URLs are required")
	case ways > 1:
		return errors.New("give one of a preset, an issuer, or auth and token URLs")
	}
	if cfg.Preset != PresetEntra && (cfg.Tenant != "" || cfg.EntraAuthority != "") {
		return errors.New("a tenant and an Entra authority are for preset entra only")
	}
	if cfg.Preset != PresetGitHub && (cfg.GitHubURL != "" || cfg.GitHubAPIURL != "") {
		return errors.New("GitHub URLs are for preset github only")
	}

	switch {
	case cfg.Preset == PresetEntra:
		return p.locateEntra(cfg)
	case cfg.Preset == PresetGoogle:
		p.name = PresetGoogle
		return p.locateIssuer(GoogleIssuer)
	case cfg.Preset == PresetGitHub:
		return p.locateGitHub(cfg)
	case cfg.Preset != "":
		return fmt.Errorf("unknown preset %q: use entra, google or github", cfg.Preset)
	case cfg.Issuer != "":
		p.name = "oidc"
		return p.locateIssuer(cfg.Issuer)
	}
	return p.locateEndpoints(cfg)
}

// locateIssuer sets up discovery of an OpenID Connect issuer, whose
// discovery document must name exactly that issuer.
func (p *Provider) locateIssuer(issuer string) error {
	if err := checkURL("issuer", issuer); err != nil {
		return err
	}
	p.discovery = newDiscovery(p,
		strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration",
		func(doc string) (issuerRule, error) {
			if doc != issuer {
				return issuerRule{}, fmt.Errorf("discovery names issuer %q, not %q", doc, issuer)
			}
			return issuerRule{value: issuer}, nil
		})
	return nil
}

// locateEntra sets up discovery of a Microsoft identity platform (v2.0)
// tenant or multi-tenant audience.
func (p *Provider) locateEntra(cfg *Config) error {
	p.name = PresetEntra
	authority := strings.TrimSuffix(or(cfg.EntraAuthority, DefaultEntraAuthority), "/")
	if err := checkURL("Entra authority", authority); err != nil {
		return err
	}
	tenant := cfg.Tenant
	if tenant == "" {
		return errors.New("preset entra needs a tenant: an ID, a domain, " +
			"or common, organizations, consumers")
	}
	if !tenantPattern.MatchString(tenant) {
		return fmt.Errorf("tenant %q is not a tenant ID, a domain or a sign-in audience", tenant)
	}

	p.discovery = newDiscovery(p,
		authority+"/"+url.PathEscape(tenant)+"/v2.0/.well-known/openid-configuration",
		func(doc string) (issuerRule, error) { return entraIssuer(tenant, doc) })
	return nil
}

// tenantPattern is what an Entra tenant may be: an ID, a domain, or a
// sign-in audience.
var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$`)

// guidPattern is an Entra tenant ID.
var guidPattern = regexp.MustCompile(
	`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// entraIssuer checks the issuer an Entra discovery document names, and
// returns the rule for ID tokens. A tenant's document names its own issuer,
// https://HOST/TENANT-ID/v2.0. The documents of common and organizations
// name a template, https://HOST/{tenantid}/v2.0, because the token comes
// from the user's own tenant: Microsoft's guidance is to check such a
// token's iss against the template with the token's tid put in.
func entraIssuer(tenant, doc string) (issuerRule, error) {
	u, err := url.Parse(doc)
	parts := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if err != nil || u.Host == "" || len(parts) != 2 || parts[1] != "v2.0" {
		return issuerRule{}, fmt.Errorf("discovery names issuer %q, not a v2.0 tenant issuer", doc)
	}
	id, _ := url.PathUnescape(parts[0])

	multi := tenant == tenantCommon || tenant == tenantOrganizations
	switch {
	case id == "{tenantid}" && multi:
		return issuerRule{value: doc, perTenant: true}, nil
	case id == "{tenantid}" || multi || !guidPattern.MatchString(id):
		return issuerRule{}, fmt.Errorf("discovery for tenant %q names issuer %q", tenant, doc)
	case guidPattern.MatchString(strings.ToLower(tenant)) && !strings.EqualFold(id, tenant):
		return issuerRule{}, fmt.Errorf("discovery for tenant %q names another tenant's issuer %q",
			tenant, doc)
	}
	return issuerRule{value: doc}, nil
}

// locateGitHub sets up GitHub's OAuth app endpoints, on github.com or a
// GitHub Enterprise Server.
func (p *Provider) locateGitHub(cfg *Config) error {
	p.name, p.github = PresetGitHub, true
	web := strings.TrimSuffix(or(cfg.GitHubURL, DefaultGitHubURL), "/")
	api := strings.TrimSuffix(cfg.GitHubAPIURL, "/")
	if api == "" {
		api = DefaultGitHubAPIURL
		if cfg.GitHubURL != "" {
			api = web + "/api/v3"
		}
	}
	for name, u := range map[string]string{"GitHub URL": web, "GitHub API URL": api} {
		if err := checkURL(name, u); err != nil {
			return err
		}
	}

	p.endpoint = oauth2.Endpoint{
		AuthURL:   web + "/login/oauth/authorize",
		TokenURL:  web + "/login/oauth/access_token",
		AuthStyle: oauth2.AuthStyleInParams,
	}
	p.userURL = api + "/user"
	return nil
}

// locateEndpoints sets up a plain OAuth 2.0 provider.
func (p *Provider) locateEndpoints(cfg *Config) error {
	p.name = "oauth2"
	if cfg.AuthURL == "" || cfg.TokenURL == "" {
		return errors.New("a plain OAuth 2.0 provider needs both an auth URL and a token URL")
	}
	urls := map[string]string{"auth URL": cfg.AuthURL, "token URL": cfg.TokenURL}
	if cfg.UserinfoURL != "" {
		urls["userinfo URL"] = cfg.UserinfoURL
	}
	for name, u := range urls {
		if err := checkURL(name, u); err != nil {
			return err
		}
	}
	p.endpoint = oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL}
	p.userURL = cfg.UserinfoURL
	return nil
}

// checkURL requires an absolute https URL, or http to a loopback host,
// which never leaves the machine.
func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s %q must be an absolute URL", name, s)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("%s %q must use https", name, s)
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackURL reports whether s is an http URL to a loopback host, which
// Config allows for providers running on the same machine, such as test
// fakes.
func IsLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "http" && isLoopback(u.Hostname())
}

// or returns s, or def if s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
