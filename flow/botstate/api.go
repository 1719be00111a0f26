package botstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// maxAnswer bounds how much of an answer is read: a record's data is at
// most MaxData, so anything much longer is not a State API answer.
const maxAnswer = 4 * MaxData

// read GETs the record at target.
func (s *Signal) read(ctx context.Context, target string) (*BotData, error) {
	resp, err := s.do(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, s.statusError(resp)
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading answer: %w", bare(err))
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("answer longer than %d bytes", maxAnswer)
	}
	var bd BotData
	if err := json.Unmarshal(body, &bd); err != nil {
		return nil, errors.New("answer is not a BotData object")
	}
	return &bd, nil
}

// write POSTs bd to the record at target; errStale means the record changed
// since bd's eTag was read.
func (s *Signal) write(ctx context.Context, target string, bd *BotData) error {
	body, err := encode(bd)
	if err != nil {
		return fmt.Errorf("encoding bot state: %w", err)
	}
	resp, err := s.do(ctx, http.MethodPost, target, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))

	switch {
	case resp.StatusCode == http.StatusPreconditionFailed:
		return errStale
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return s.statusError(resp)
	}
	return nil
}

// do sends one request with the bot's bearer token. A 401 answer drops the
// token, so the next request fetches a new one.
func (s *Signal) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	tok, src, err := s.tokens.get()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("creating request: %w", bare(err))
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-bothandoff")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return nil, bare(err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		s.tokens.drop(src)
	}
	return resp, nil
}

// statusError turns an answer that is no success into an error the outbox
// acts on: permanent, retry after a delay the API asked for, or retry with
// backoff.
func (s *Signal) statusError(resp *http.Response) error {
	err := &StatusError{Code: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if after, ok := flow.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
			return &flow.RetryAfterError{After: after, Err: err}
		}
	}
	return err
}

// bare strips the URL from a transport error: it names the conversation
// and the user, which are not for logs. What went wrong stays.
func bare(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
