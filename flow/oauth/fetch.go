package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// userAgent names this client to providers; GitHub's API requires one.
const userAgent = "caddy-bothandoff"

// getJSON decodes the JSON answer to a GET of u into v. The answer is read
// through a size limit, and errors name the URL and the status, never the
// provider's text.
func (p *Provider) getJSON(ctx context.Context, u string, header http.Header, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("creating request: %w", err)
	}
	for name, vals := range header {
		req.Header[name] = vals
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", userAgent)

	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: u, status: resp.StatusCode}
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading answer of %s: %w", u, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("answer of %s is larger than %d bytes", u, maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding answer of %s: %w", u, err)
	}
	return nil
}

// statusError is an answer with a status other than 200 OK.
type statusError struct {
	url    string
	status int
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: status %d", e.url, e.status) }

// unreachable reports whether a GET failed for want of the provider: no
// answer, a timeout, a cut answer, a failure on its side (5xx) or a rate
// limit (429). Any other answer is the provider's word.
func unreachable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.status >= 500 || se.status == http.StatusTooManyRequests
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// fetchUser reads the signed-in user from the provider's user endpoint
// (GitHub's /user, or a userinfo URL) with the access token. The answer
// must be a JSON object; it goes to the bot as it is.
func (p *Provider) fetchUser(ctx context.Context, accessToken string) (json.RawMessage, error) {
	header := http.Header{"Authorization": {"Bearer " + accessToken}}
	if p.github {
		header.Set("Accept", "application/vnd.github+json")
		header.Set("X-GitHub-Api-Version", "2022-11-28")
	}

	var user json.RawMessage
	err := p.getJSON(ctx, p.userURL, header, &user)
	switch {
	case err != nil && unreachable(err):
		return nil, fmt.Errorf("fetching user: %w: %w", flow.ErrProviderUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("fetching user: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(user), []byte("{")) {
		return nil, errors.New("fetching user: answer is not a JSON object")
	}
	return user, nil
}
