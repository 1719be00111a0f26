package botstate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokens hands out the bot's bearer token from the OAuth library's token
// source, which keeps it until shortly before it expires.
type tokens struct {
	cfg *clientcredentials.Config
	// ctx carries the HTTP client for the token endpoint. The library keeps
	// it for every refresh, so it cannot be a delivery's context; the
	// client's timeout bounds each fetch.
	ctx context.Context

	mu  sync.Mutex
	src oauth2.TokenSource
}

func newTokens(cfg *clientcredentials.Config, client *http.Client) *tokens {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	return &tokens{cfg: cfg, ctx: ctx, src: cfg.TokenSource(ctx)}
}

// get returns a token and the source it came from, for drop.
func (t *tokens) get() (*oauth2.Token, oauth2.TokenSource, error) {
	t.mu.Lock()
	src := t.src
	t.mu.Unlock()

	tok, err := src.Token()
	if err != nil {
		return nil, nil, tokenError(err)
	}
	return tok, src, nil
}

// drop forgets the token src gave, which the API refused: it may have been
// revoked, or the app's credentials rotated. Of several requests refused at
// once, the first replaces the source; the others find it replaced.
func (t *tokens) drop(src oauth2.TokenSource) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.src == src {
		t.src = t.cfg.TokenSource(t.ctx)
	}
}

// oauthCode matches an RFC 6749 error code, like invalid_client.
var oauthCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// tokenError describes a failed fetch by the endpoint's status and OAuth
// error code only: the library's own message carries the answer's body.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w: %w", ErrToken, bare(err))
	}
	msg := "token endpoint refused"
	if re.Response != nil {
		msg = fmt.Sprintf("token endpoint answered %d", re.Response.StatusCode)
	}
	if oauthCode.MatchString(re.ErrorCode) {
		msg += " " + re.ErrorCode
	}
	return fmt.Errorf("%w: %s", ErrToken, msg)
}
