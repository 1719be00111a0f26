// Package botkit is the bot's side of caddy-bothandoff for Go bots: it signs
// links for a conversation, and calls the handler's bot API to check the
// number a user pastes, read a flow's status, or cancel it.
package botkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Client talks to one handler.
type Client struct {
	// URL is the handler's base URL with its prefix, like
	// https://example.com/handoff. It is also the token audience unless
	// Audience is set.
	URL string
	// Audience overrides the audience tokens name.
	Audience string
	// Issuer is the bot's ID, if the handler checks iss.
	Issuer string
	// Signer signs links and API tokens with the bot's key.
	Signer flow.Signer
	// HTTP is the client for API calls. Default: one with a 15s timeout.
	HTTP *http.Client
	// Now is the clock tokens are issued by. Default: time.Now.
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return strings.TrimSuffix(c.URL, "/")
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// Link signs a link for flow name, conversation ref and flow data, living
// ttl (default 10 minutes), and returns the URL to send the user.
func (c *Client) Link(name string, ref flow.Ref, data map[string]any, ttl time.Duration) (string, error) {
	token, err := c.Signer.SignLink(flow.Link{
		Flow: name, Ref: ref, Data: data, TTL: ttl,
		Audience: c.audience(), Issuer: c.Issuer, Now: c.now(),
	})
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(c.URL, "/") + "/start?t=" + url.QueryEscape(token), nil
}

// APIError is an error answer of the bot API.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the error code: invalid_code, locked, expired, no_flow,
	// not_completed, already_finished, bad_request, unauthorized, ...
	Code    string `json:"error"`
	Message string `json:"message"`
	// AttemptsLeft is set with invalid_code.
	AttemptsLeft *int `json:"attemptsLeft,omitempty"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("handoff API: %d %s: %s", e.Status, e.Code, e.Message)
}

// Verify checks the number a user pasted (any text around it is ignored) and
// returns the flow's result. The result is released once.
func (c *Client) Verify(ctx context.Context, k flow.Key, code string) (*flow.VerifyResult, error) {
	body := map[string]string{
		"channelId": k.ChannelID, "conversationId": k.ConversationID, "userId": k.UserID, "code": code,
	}
	var res flow.VerifyResult
	return &res, c.call(ctx, http.MethodPost, "/api/verify", body, &res)
}

// Status returns where the conversation's flow stands.
func (c *Client) Status(ctx context.Context, k flow.Key) (*flow.StatusInfo, error) {
	q := url.Values{"channelId": {k.ChannelID}, "conversationId": {k.ConversationID}, "userId": {k.UserID}}
	var res flow.StatusInfo
	return &res, c.call(ctx, http.MethodGet, "/api/status?"+q.Encode(), nil, &res)
}

// Cancel ends the conversation's open flow.
func (c *Client) Cancel(ctx context.Context, k flow.Key) (*flow.StatusInfo, error) {
	var res flow.StatusInfo
	return &res, c.call(ctx, http.MethodPost, "/api/cancel", k, &res)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	token, err := c.Signer.SignAPI(flow.APIToken{
		Audience: c.audience(), Issuer: c.Issuer, TTL: time.Minute, Now: c.now(),
	})
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}

	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("creating request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("calling handoff API: %w", err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading handoff API answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Code == "" {
			apiErr.Code, apiErr.Message = "http_error", http.StatusText(resp.StatusCode)
		}
		return apiErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding handoff API answer: %w", err)
	}
	return nil
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}
