package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// maxLoginHint bounds a link's login hint.
const maxLoginHint = 256

// linkData is the data an oauth link may carry.
type linkData struct {
	// Scopes narrow the configured scopes for this sign-in: a JSON array
	// of strings, or one string of scopes separated by spaces.
	Scopes scopeList `json:"scopes"`
	// LoginHint is the account the user likely signs in with, passed to
	// the provider as login_hint (GitHub: login).
	LoginHint string `json:"loginHint"`
}

// scopeList reads scopes as a JSON array or a space-separated string.
type scopeList []string

func (s *scopeList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strings.Fields(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("scopes must be an array of strings or a string")
	}
	*s = list
	return nil
}

// ValidateData implements flow.Validator: a link may narrow the scopes and
// name a login hint. It may not widen the scopes, nor carry other keys, so
// that a typing error in the bot fails at the click, not silently.
func (p *Provider) ValidateData(data json.RawMessage) error {
	_, err := p.parseData(data)
	return err
}

// parseData reads and checks a link's data.
func (p *Provider) parseData(data json.RawMessage) (*linkData, error) {
	var d linkData
	if len(bytes.TrimSpace(data)) == 0 || string(data) == "null" {
		return &d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLinkData, err)
	}

	if d.Scopes != nil {
		if len(d.Scopes) == 0 {
			return nil, fmt.Errorf("%w: scopes, when given, must name a scope", ErrLinkData)
		}
		for _, s := range d.Scopes {
			if !slices.Contains(p.scopes, s) {
				return nil, fmt.Errorf("%w: %q is not a scope of the flow", ErrScopeNotAllowed, s)
			}
		}
	}
	if len(d.LoginHint) > maxLoginHint || strings.ContainsFunc(d.LoginHint, unicode.IsControl) {
		return nil, fmt.Errorf("%w: loginHint must be at most %d characters, none a control",
			ErrLinkData, maxLoginHint)
	}
	return &d, nil
}

// scopesFor returns the scopes to request for a link's data: the configured
// ones, or those the link narrowed them to, always with openid for OpenID
// Connect.
func (p *Provider) scopesFor(d *linkData) []string {
	if d.Scopes == nil {
		return slices.Clone(p.scopes)
	}
	var out []string
	if p.discovery != nil {
		out = append(out, scopeOpenID)
	}
	for _, s := range d.Scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// validScope reports whether s is a scope token of RFC 6749, section 3.3:
// printable ASCII but for space, double quote and backslash.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
