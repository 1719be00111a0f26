// Package botkit is the bot's side of caddy-bothandoff for Go bots: it signs
// links for a conversation, calls the handler's bot API to check the number
// a user pastes, read a flow's status, or cancel it, and reads the events
// the handler's signals deliver (a webhook, or the bot's own state).
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

// Client talks to one handler. Its zero value is not usable: URL and Signer
// are required. It is safe for concurrent use once set up.
type Client struct {
	// URL is the handler's base URL with its prefix, like
	// https://example.com/handoff. It is also the token audience unless
	// Audience is set.
	URL string
	// Audience overrides the audience tokens name. Set it when the handler
	// is configured with an audience other than its origin and prefix.
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

// maxAnswer bounds what is read of an API answer.
const maxAnswer = 1 << 20

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) base() string { return strings.TrimSuffix(c.URL, "/") }

func (c *Client) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return c.base()
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Timeout: 15 * time.Second}

// Link signs a link for flow name, conversation ref and flow data, living
// ttl (default 10 minutes; the handler refuses links living longer than its
// max_link_ttl, 15 minutes unless configured), and returns the URL to send
// the user.
func (c *Client) Link(name string, ref flow.Ref, data map[string]any,
	ttl time.Duration) (string, error) {
	token, err := c.Signer.SignLink(flow.Link{
		Flow: name, Ref: ref, Data: data, TTL: ttl,
		Audience: c.audience(), Issuer: c.Issuer, Now: c.now(),
	})
	if err != nil {
		return "", fmt.Errorf("signing link: %w", err)
	}
	return c.base() + "/start?t=" + url.QueryEscape(token), nil
}

// APIError is an error answer of the bot API. The calls return it as is,
// so errors.As and IsCode find it.
type APIError struct {
	// Status is the HTTP status.
	Status int `json:"-"`
	// Code is the error code: invalid_code, locked, expired, no_flow,
	// not_completed, already_finished, bad_request, unauthorized,
	// too_large, rate_limited, unavailable; http_error when the answer
	// was not the API's JSON (a proxy's error page, say).
	Code string `json:"error"`
	// Message is the handler's short explanation, for logs.
	Message string `json:"message"`
	// AttemptsLeft is set with invalid_code: how many wrong numbers the
	// user may still paste before the flow is locked.
	AttemptsLeft *int `json:"attemptsLeft,omitempty"`
	// RetryAfter is how long to wait before calling again, when the
	// handler asked for it (rate_limited, unavailable).
	RetryAfter time.Duration `json:"-"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("handoff API: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// Verify checks the number a user pasted (any text around it is ignored)
// and returns the flow's result. The result is released once: a second
// call with the same number answers already_finished.
func (c *Client) Verify(ctx context.Context, k flow.Key, code string) (*flow.VerifyResult, error) {
	body := struct {
		flow.Key
		Code string `json:"code"`
	}{k, code}
	var res flow.VerifyResult
	if err := c.call(ctx, http.MethodPost, "/api/verify", body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Status returns where the conversation's flow stands. A conversation whose
// link was not opened yet has no flow: the error is no_flow.
func (c *Client) Status(ctx context.Context, k flow.Key) (*flow.StatusInfo, error) {
	q := url.Values{
		"channelId": {k.ChannelID}, "conversationId": {k.ConversationID}, "userId": {k.UserID},
	}
	var res flow.StatusInfo
	if err := c.call(ctx, http.MethodGet, "/api/status?"+q.Encode(), nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Cancel ends the conversation's open flow and returns its status.
func (c *Client) Cancel(ctx context.Context, k flow.Key) (*flow.StatusInfo, error) {
	var res flow.StatusInfo
	if err := c.call(ctx, http.MethodPost, "/api/cancel", k, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// call makes one API call with a fresh API token and decodes the answer
// into out, or returns an *APIError.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	req, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("calling handoff API: %w", err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("reading handoff API answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return c.apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding handoff API answer: %w", err)
	}
	return nil
}

// request builds an API request signed with a fresh API token.
func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	token, err := c.Signer.SignAPI(flow.APIToken{
		Audience: c.audience(), Issuer: c.Issuer, TTL: time.Minute, Now: c.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("signing API token: %w", err)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}

	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, body)
	if err != nil {
		return nil, fmt.Errorf("creating request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// apiError decodes an error answer. An answer that is not the API's JSON
// becomes http_error with the status text; its body is not kept.
func (c *Client) apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, e) != nil || e.Code == "" {
		*e = APIError{Status: resp.StatusCode, Code: "http_error",
			Message: http.StatusText(resp.StatusCode)}
	}
	if d, ok := flow.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		e.RetryAfter = d
	}
	return e
}
