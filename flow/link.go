package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, written in the JWS header's typ so that a link can never be
// used as an API token, nor the other way round.
const (
	TypeLink = "handoff-link+jwt"
	TypeAPI  = "handoff-api+jwt"
)

// Limits on tokens, checked before any parsing.
const (
	// MaxTokenLen bounds a link or API token in bytes.
	MaxTokenLen = 8 << 10
	// MaxAPITokenTTL is the longest an API token may live ahead of now.
	MaxAPITokenTTL = 5 * time.Minute
	// DefaultMaxLinkTTL is the longest a link may live unless configured.
	DefaultMaxLinkTTL = 15 * time.Minute
	// clockSkew is the leeway for iat, nbf and exp between bot and handler.
	clockSkew = 30 * time.Second
)

// flowNamePattern is what a flow name may be: it appears in cookie names and
// paths, so it is kept to a small alphabet.
var flowNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// ValidFlowName reports whether name may name a flow.
func ValidFlowName(name string) bool { return flowNamePattern.MatchString(name) }

// LinkClaims are the claims of a link token.
type LinkClaims struct {
	jwt.RegisteredClaims

	// Flow names a flow configured in the handler.
	Flow string `json:"flow"`
	// Ref is the conversation the flow belongs to.
	Ref Ref `json:"ref"`
	// Data are flow parameters the bot signs: an amount, scopes, free keys.
	Data json.RawMessage `json:"data,omitempty"`
}

// APIClaims are the claims of a bot API token.
type APIClaims struct {
	jwt.RegisteredClaims
}

// A Verifier checks link and API tokens against the bot's keys.
type Verifier struct {
	keys       []LinkKey
	methods    []string
	issuer     string
	maxLinkTTL time.Duration
	now        func() time.Time
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys the tokens may be signed with; at least one.
	Keys []LinkKey
	// Issuer every token must name in iss, if set.
	Issuer string
	// MaxLinkTTL bounds exp - iat of a link. Default: DefaultMaxLinkTTL.
	MaxLinkTTL time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("at least one link key is required")
	}

	v := &Verifier{
		keys:       cfg.Keys,
		issuer:     cfg.Issuer,
		maxLinkTTL: cfg.MaxLinkTTL,
		now:        cfg.Now,
	}
	if v.maxLinkTTL <= 0 {
		v.maxLinkTTL = DefaultMaxLinkTTL
	}
	if v.now == nil {
		v.now = time.Now
	}
	seen := map[string]bool{}
	for _, k := range cfg.Keys {
		if !seen[k.alg] {
			seen[k.alg] = true
			v.methods = append(v.methods, k.alg)
		}
	}
	return v, nil
}

// Link checks a link token for audience aud and returns its claims. Beyond
// the signature it requires typ, aud, iss (if configured), iat, exp, jti, a
// flow name and a complete conversation reference, and a lifetime within the
// maximum.
func (v *Verifier) Link(token, aud string) (*LinkClaims, error) {
	var c LinkClaims
	if err := v.parse(token, aud, TypeLink, &c, true); err != nil {
		return nil, err
	}

	if c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: iat is required", ErrBadToken)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life > v.maxLinkTTL {
		return nil, fmt.Errorf("%w: link lives %s, longer than the allowed %s",
			ErrBadToken, life, v.maxLinkTTL)
	}
	if c.ExpiresAt.Sub(v.now()) > v.maxLinkTTL+clockSkew {
		return nil, fmt.Errorf("%w: link expires too far ahead", ErrBadToken)
	}
	if c.ID == "" || len(c.ID) > 128 {
		return nil, fmt.Errorf("%w: jti is required and at most 128 bytes", ErrBadToken)
	}
	if !ValidFlowName(c.Flow) {
		return nil, fmt.Errorf("%w: flow name is missing or malformed", ErrBadToken)
	}
	if err := c.Ref.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if len(c.Data) > 0 && c.Data[0] != '{' {
		return nil, fmt.Errorf("%w: data must be a JSON object", ErrBadToken)
	}
	return &c, nil
}

// API checks a bot API token for audience aud: typ, signature, aud, iss (if
// configured) and an exp no more than MaxAPITokenTTL ahead.
func (v *Verifier) API(token, aud string) (*APIClaims, error) {
	var c APIClaims
	if err := v.parse(token, aud, TypeAPI, &c, false); err != nil {
		return nil, err
	}
	if c.ExpiresAt.Sub(v.now()) > MaxAPITokenTTL+clockSkew {
		return nil, fmt.Errorf("%w: API token expires more than %s ahead",
			ErrBadToken, MaxAPITokenTTL)
	}
	return &c, nil
}

func (v *Verifier) parse(token, aud, typ string, claims jwt.Claims, needIAT bool) error {
	if len(token) > MaxTokenLen {
		return fmt.Errorf("%w: token longer than %d bytes", ErrBadToken, MaxTokenLen)
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	}
	if needIAT {
		opts = append(opts, jwt.WithIssuedAt())
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}

	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, v.keyfunc(typ))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %w", ErrTokenExpired, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	return nil
}

// keyfunc picks the keys that may check a token: those of the token's
// algorithm and, if the token names one, of its kid. It also refuses a token
// of the wrong type before any signature work.
func (v *Verifier) keyfunc(typ string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if got, _ := t.Header["typ"].(string); got != typ {
			return nil, fmt.Errorf("token type %q, want %q", got, typ)
		}
		kid, _ := t.Header["kid"].(string)

		var set jwt.VerificationKeySet
		for _, k := range v.keys {
			if k.alg != t.Method.Alg() || (kid != "" && k.ID != "" && k.ID != kid) {
				continue
			}
			set.Keys = append(set.Keys, k.key)
		}
		switch len(set.Keys) {
		case 0:
			return nil, errors.New("no key for this token")
		case 1:
			return set.Keys[0], nil
		}
		return set, nil
	}
}

// Link is what a bot puts in a link token.
type Link struct {
	// Flow names a flow configured in the handler.
	Flow string
	// Ref is the conversation and user the flow is for.
	Ref Ref
	// Data are flow parameters; nil for none.
	Data map[string]any
	// Audience is the handler's audience: its origin and prefix.
	Audience string
	// Issuer is the bot's ID, if the handler checks it.
	Issuer string
	// ID is the jti; a fresh random one when empty.
	ID string
	// TTL is the link's lifetime. Default: 10 minutes.
	TTL time.Duration
	// Now is the issue time. Default: time.Now().
	Now time.Time
}

// SignLink returns a signed link token for l.
func (s Signer) SignLink(l Link) (string, error) {
	if err := l.Ref.Validate(); err != nil {
		return "", err
	}
	if !ValidFlowName(l.Flow) {
		return "", fmt.Errorf("flow name %q is malformed", l.Flow)
	}

	now, ttl, id := l.Now, l.TTL, l.ID
	if now.IsZero() {
		now = time.Now()
	}
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	if id == "" {
		id = RandomID()
	}

	claims := struct {
		jwt.RegisteredClaims
		Flow string         `json:"flow"`
		Ref  Ref            `json:"ref"`
		Data map[string]any `json:"data,omitempty"`
	}{registered(l.Audience, l.Issuer, id, now, ttl), l.Flow, l.Ref, l.Data}
	return s.sign(TypeLink, claims)
}

// APIToken is what a bot puts in an API token.
type APIToken struct {
	// Audience is the handler's audience: its origin and prefix.
	Audience string
	// Issuer is the bot's ID, if the handler checks it.
	Issuer string
	// TTL is the token's lifetime, at most MaxAPITokenTTL. Default: 1 minute.
	TTL time.Duration
	// Now is the issue time. Default: time.Now().
	Now time.Time
}

// SignAPI returns a signed bot API token.
func (s Signer) SignAPI(a APIToken) (string, error) {
	ttl, now := a.TTL, a.Now
	if ttl <= 0 || ttl > MaxAPITokenTTL {
		ttl = time.Minute
	}
	if now.IsZero() {
		now = time.Now()
	}
	return s.sign(TypeAPI, registered(a.Audience, a.Issuer, RandomID(), now, ttl))
}

func registered(aud, iss, id string, now time.Time, ttl time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{aud},
		Issuer:    iss,
		ID:        id,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
}

func (s Signer) sign(typ string, claims jwt.Claims) (string, error) {
	if s.method == nil {
		return "", errors.New("signer has no key")
	}
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["typ"] = typ
	if s.KeyID != "" {
		t.Header["kid"] = s.KeyID
	}

	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return out, nil
}
