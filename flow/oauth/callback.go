package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Failure codes of a flow, as the bot receives them. An error the provider
// sends back to the callback (access_denied and the like) is passed on as
// it is.
const (
	FailExchange       = "exchange_failed"
	FailInvalidIDToken = "invalid_id_token"
	FailUser           = "userinfo_failed"
	FailProvider       = "provider_error"
)

// errorCodePattern is what an OAuth error code passed to the bot may be.
var errorCodePattern = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// Return implements flow.Returner: it handles the browser's arrival at
// {prefix}/callback. The engine has found the flow from the state's handle
// and checked that this browser holds it.
//
// A state that does not match is refused and leaves the flow pending, so a
// forged callback cannot end another's sign-in. An error from the provider
// fails the flow with its code. A provider that cannot be reached before the
// code is spent leaves the flow pending; the user may reload or open the
// link again. One that cannot be reached after it leaves the flow waiting,
// with the token response kept for Recheck.
//
// A doubled callback (the same browser's callback twice, as a reload during
// the exchange sends it) must not fail a sign-in the first request
// completes. Within one process the second request is refused at once and
// the flow is left as it is. Between instances sharing a store both may
// exchange the code; the one the token endpoint refuses as spent returns a
// contested failure, which the engine settles only if the flow is still
// pending a few seconds later.
func (p *Provider) Return(ctx context.Context, f *flow.Flow,
	r *http.Request) (*flow.Outcome, error) {
	if f.State == nil {
		return nil, fmt.Errorf("%w: callback before the sign-in began", flow.ErrBadRequest)
	}
	st, err := openState(f.State)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if !st.matches(f.Handle, q.Get("state")) {
		return nil, fmt.Errorf("%w: callback state does not match the flow", flow.ErrBadRequest)
	}
	if q.Has("error") {
		return p.refused(f, q.Get("error")), nil
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: callback without code or error", flow.ErrBadRequest)
	}

	if st.Tokens != nil {
		// An earlier callback spent the code and the flow keeps its token
		// response; the engine rechecks it rather than calling here.
		return p.Recheck(ctx, f)
	}

	if _, busy := p.returning.LoadOrStore(f.ID, true); busy {
		return nil, fmt.Errorf("%w: callback already being handled", flow.ErrNotCompleted)
	}
	defer p.returning.Delete(f.ID)
	return p.redeem(p.httpContext(ctx), &redemption{f: f, st: st}, code)
}

// Recheck implements flow.Rechecker: for a flow left waiting after its code
// was exchanged, it runs the checks that could not reach the provider then
// (the ID token's signature, the user) on the token response the flow
// keeps, and returns what the callback would have. A provider still
// unreachable returns an error wrapping flow.ErrProviderUnavailable; a flow
// that keeps no token response has nothing to recheck.
func (p *Provider) Recheck(ctx context.Context, f *flow.Flow) (*flow.Outcome, error) {
	if f.State == nil {
		return nil, nil
	}
	st, err := openState(f.State)
	if err != nil {
		return nil, err
	}
	if st.Tokens == nil {
		return nil, nil
	}

	ctx = p.httpContext(ctx)
	rd := &redemption{f: f, st: st}
	if err := p.discover(ctx, rd); err != nil {
		return nil, err
	}
	return p.conclude(ctx, rd, st.Tokens)
}

// redemption is one callback's exchange of its code.
type redemption struct {
	f  *flow.Flow
	st *state
	// m is the provider's metadata; nil for plain OAuth 2.0.
	m *metadata
}

// refused fails the flow with the error code the provider sent back. Only a
// short code passes; the provider's description never does.
func (p *Provider) refused(f *flow.Flow, code string) *flow.Outcome {
	if !errorCodePattern.MatchString(code) {
		code = FailProvider
	}
	p.log.Info("provider refused sign-in", slog.String("flow", f.Name), slog.String("error", code))
	return &flow.Outcome{Failure: code}
}

// redeem exchanges the code, checks what comes back and returns the result.
func (p *Provider) redeem(ctx context.Context, rd *redemption, code string) (*flow.Outcome, error) {
	if err := p.discover(ctx, rd); err != nil {
		return nil, err
	}
	ep := p.endpoint
	if rd.m != nil {
		// Fetched before the code is spent: if the keys cannot be had,
		// the user can reload the callback once the provider is back.
		if err := rd.m.keys.ready(ctx); err != nil {
			return nil, err
		}
		ep = rd.m.endpoint
	}

	opts, err := p.clientAuth(ep.TokenURL)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oauth2.VerifierOption(rd.st.Verifier))
	tok, err := p.config(ep, rd.st).Exchange(ctx, code, opts...)
	if err != nil {
		return p.exchangeFailed(rd.f, err)
	}
	return p.afterExchange(ctx, rd, p.keep(tok))
}

// discover reads the provider's metadata into rd, for OpenID Connect.
func (p *Provider) discover(ctx context.Context, rd *redemption) error {
	if p.discovery == nil {
		return nil
	}
	var err error
	rd.m, err = p.discovery.get(ctx)
	return err
}

// afterExchange checks a token response the provider gave for the flow's
// code. The code is spent by now, so a provider that cannot be reached for
// the checks leaves the flow waiting, with the token response kept in its
// state, for Recheck to check once the provider is back.
func (p *Provider) afterExchange(ctx context.Context, rd *redemption, tk *tokens) (
	*flow.Outcome, error,
) {
	out, err := p.conclude(ctx, rd, tk)
	if !errors.Is(err, flow.ErrProviderUnavailable) {
		return out, err
	}

	p.log.Warn("provider unavailable after the code exchange; the flow waits",
		slog.String("flow", rd.f.Name), slog.String("error", err.Error()))
	st := *rd.st
	st.Tokens = tk
	b, err := json.Marshal(&st)
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return &flow.Outcome{Waiting: true, State: b}, nil
}

// conclude checks a token response (the ID token, the user) and returns the
// flow's outcome. A provider that cannot be reached for a check returns an
// error wrapping flow.ErrProviderUnavailable.
func (p *Provider) conclude(ctx context.Context, rd *redemption, tk *tokens) (
	*flow.Outcome, error,
) {
	res := p.newResult(tk, rd.st)
	if rd.m != nil {
		out, err := p.checkIDToken(ctx, rd, tk, res)
		if out != nil || err != nil {
			return out, err
		}
	}
	if p.userURL != "" {
		var err error
		if res.User, err = p.fetchUser(ctx, tk.AccessToken); err != nil {
			return p.userFailed(rd.f, err)
		}
	}

	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return &flow.Outcome{Result: b}, nil
}

// userFailed decides what a failed user fetch means: a user endpoint that
// cannot be reached or fails on its side is an error for the caller to
// wait on; any other answer fails the flow.
func (p *Provider) userFailed(f *flow.Flow, err error) (*flow.Outcome, error) {
	if errors.Is(err, flow.ErrProviderUnavailable) {
		return nil, err
	}
	p.log.Warn("fetching user failed",
		slog.String("flow", f.Name), slog.String("error", err.Error()))
	return &flow.Outcome{Failure: FailUser}, nil
}

// exchangeFailed decides what a failed exchange means. The provider refusing
// the code fails the flow; a provider that cannot be reached or fails on its
// side leaves it pending. Only the status and the error code are logged.
func (p *Provider) exchangeFailed(f *flow.Flow, err error) (*flow.Outcome, error) {
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		status, code := 0, re.ErrorCode
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if !errorCodePattern.MatchString(code) {
			code = ""
		}
		if status >= 500 || code == "temporarily_unavailable" || code == "server_error" {
			return nil, fmt.Errorf("exchanging code: status %d %s: %w",
				status, code, flow.ErrProviderUnavailable)
		}
		if p.spentCode(code) {
			// A doubled callback's other request may have redeemed
			// the code, on another instance: the engine settles the
			// failure only if that one does not settle the flow.
			p.log.Info("token endpoint refused a code another callback may have redeemed",
				slog.String("flow", f.Name), slog.Int("status", status),
				slog.String("error", code))
			return &flow.Outcome{Failure: FailExchange, Contested: true}, nil
		}
		p.log.Warn("token endpoint refused the code", slog.String("flow", f.Name),
			slog.Int("status", status), slog.String("error", code))
	case errors.As(err, &ue):
		return nil, fmt.Errorf("exchanging code: %w: %w", flow.ErrProviderUnavailable, ue.Err)
	default:
		// The answer did not parse or had no access token; its text stays
		// out of the log.
		p.log.Warn("token endpoint answered without a usable token", slog.String("flow", f.Name))
	}
	return &flow.Outcome{Failure: FailExchange}, nil
}

// spentCode reports whether a token endpoint's error code is the one it
// gives for a code already redeemed: invalid_grant (RFC 6749, section 5.2),
// which GitHub calls bad_verification_code. The same code also means a
// wrong verifier or redirect URI, so such a failure is only delayed.
func (p *Provider) spentCode(code string) bool {
	return code == "invalid_grant" || (p.github && code == "bad_verification_code")
}

// checkIDToken verifies the ID token (signature by the provider's keys,
// issuer, audience, expiry, nonce, and the access token's hash where given)
// and puts its claims in res. A token that fails a check fails the flow; a
// key set that cannot be fetched is an error wrapping
// flow.ErrProviderUnavailable.
func (p *Provider) checkIDToken(ctx context.Context, rd *redemption, tk *tokens, res *Result) (
	*flow.Outcome, error,
) {
	f, m := rd.f, rd.m
	if tk.IDToken == "" {
		return p.badIDToken(f, errors.New("token response has no ID token"))
	}

	ctx, note := withKeyNote(ctx)
	idt, err := m.verifier.Verify(ctx, tk.IDToken)
	if note.err != nil {
		// Only a key rotation during a key endpoint outage gets here.
		return nil, note.err
	}
	if err != nil {
		return p.badIDToken(f, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(rd.st.Nonce)) != 1 {
		return p.badIDToken(f, errors.New("nonce does not match"))
	}
	if m.issuer.perTenant {
		if err := checkTenant(m.issuer.value, note.issuer, idt); err != nil {
			return p.badIDToken(f, err)
		}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tk.AccessToken); err != nil {
			return p.badIDToken(f, fmt.Errorf("at_hash: %w", err))
		}
	}

	if err := idt.Claims(&res.Claims); err != nil {
		return p.badIDToken(f, err)
	}
	res.IDToken = tk.IDToken
	return nil, nil
}

func (p *Provider) badIDToken(f *flow.Flow, err error) (*flow.Outcome, error) {
	p.log.Warn("ID token refused", slog.String("flow", f.Name), slog.String("error", err.Error()))
	return &flow.Outcome{Failure: FailInvalidIDToken}, nil
}

// checkTenant checks the issuer of a token from a multi-tenant Entra
// audience: it must be the discovery document's template with the token's
// own tid put in, so a token names the tenant that issued it. Where the key
// that verified the token has an issuer member (keyIssuer), as Entra gives
// the keys of tenants with signing keys of their own, iss must also be that
// member with the tid put in, so a tenant's key signs for that tenant only.
// A key without one is held to the template alone.
func checkTenant(template, keyIssuer string, idt *oidc.IDToken) error {
	var c struct {
		TenantID string `json:"tid"`
	}
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("reading tid: %w", err)
	}
	if !guidPattern.MatchString(c.TenantID) {
		return errors.New("token has no valid tid claim")
	}

	if want := withTenant(template, c.TenantID); idt.Issuer != want {
		return fmt.Errorf("issuer %q is not that of the token's tenant, %q", idt.Issuer, want)
	}
	if keyIssuer == "" {
		return nil
	}
	if want := withTenant(keyIssuer, c.TenantID); idt.Issuer != want {
		return fmt.Errorf("issuer %q is not that of the signing key, %q", idt.Issuer, want)
	}
	return nil
}

// withTenant returns an Entra issuer template with a tenant ID put in.
func withTenant(template, tid string) string {
	return strings.Replace(template, "{tenantid}", tid, 1)
}

// tokens is a token response as the flow keeps it: what the result is made
// of, and the raw ID token, so that the checks can be run again without the
// code.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is when the access token expires, if the provider said.
	Expiry time.Time `json:"expiry,omitzero"`
	// Scope is the token response's scope member, as it came.
	Scope   string `json:"scope,omitempty"`
	IDToken string `json:"id_token,omitempty"`
}

// keep returns what the flow keeps of a token response.
func (p *Provider) keep(tok *oauth2.Token) *tokens {
	tk := &tokens{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.Type(),
		RefreshToken: tok.RefreshToken,
	}
	tk.Scope, _ = tok.Extra("scope").(string)
	tk.IDToken, _ = tok.Extra("id_token").(string)
	switch {
	case tok.ExpiresIn > 0:
		tk.Expiry = p.now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()
	case !tok.Expiry.IsZero():
		tk.Expiry = tok.Expiry.UTC()
	}
	return tk
}

// newResult returns the result of a token response.
func (p *Provider) newResult(tk *tokens, st *state) *Result {
	return &Result{
		Provider:     p.name,
		AccessToken:  tk.AccessToken,
		RefreshToken: tk.RefreshToken,
		TokenType:    tk.TokenType,
		ExpiresAt:    tk.Expiry,
		Scopes:       grantedScopes(tk.Scope, st.Scopes),
	}
}

// grantedScopes returns the scopes a token response's scope member names,
// separated by spaces (or commas, as GitHub sends them); without them the
// requested scopes were granted (RFC 6749, section 5.1).
func grantedScopes(scope string, requested []string) []string {
	if scope == "" {
		return requested
	}
	return strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' || r == ',' })
}
