package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
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
	if err := p.getJSON(ctx, p.userURL, header, &user); err != nil {
		return nil, fmt.Errorf("fetching user: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(user), []byte("{")) {
		return nil, errors.New("fetching user: answer is not a JSON object")
	}
	return user, nil
}
