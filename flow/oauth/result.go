package oauth

import (
	"encoding/json"
	"time"
)

// Result is what the bot receives once the user's magic number checks out,
// in the verify API's result.
type Result struct {
	// Provider is entra, google, github, oidc (an issuer) or oauth2
	// (explicit endpoints).
	Provider     string `json:"provider"`
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken,omitempty"`
	// TokenType is the access token's type, normally Bearer.
	TokenType string `json:"tokenType"`
	// ExpiresAt is when the access token expires, if the provider said.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Scopes are the scopes granted.
	Scopes []string `json:"scopes"`
	// IDToken is the verified ID token (OpenID Connect), and Claims its
	// claims.
	IDToken string          `json:"idToken,omitempty"`
	Claims  json.RawMessage `json:"claims,omitempty"`
	// User is the user as the provider's API tells it: GitHub's /user, or
	// a configured userinfo URL.
	User json.RawMessage `json:"user,omitempty"`
}
