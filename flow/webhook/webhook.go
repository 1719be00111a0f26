// Package webhook is the webhook signal: it posts each event as JSON to the
// bot's URL, signed with a shared secret, and lets the bot check the
// signature.
//
// The signature header reads "t=UNIX,v1=HEX", where HEX is the hex
// HMAC-SHA256 of the timestamp, a dot, and the raw body.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Headers of a webhook request.
const (
	HeaderSignature = "Handoff-Signature"
	HeaderDelivery  = "Handoff-Delivery"
)

// MinSecretLen is the shortest webhook secret accepted, in bytes.
const MinSecretLen = 32

// DefaultTolerance is how far a signature's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// Signal posts events to a URL.
type Signal struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// New returns a webhook signal posting to url, signing with secret. A nil
// client means one with a 15 second timeout; a nil now means time.Now.
func New(url string, secret []byte, client *http.Client, now func() time.Time) (*Signal, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("webhook URL %q must be http or https", url)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("webhook secret is %d bytes; at least %d are required",
			len(secret), MinSecretLen)
	}
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	// A redirect would turn the POST into a GET whose 2xx looked like a
	// delivery; the bot's URL must answer itself.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &c
	if now == nil {
		now = time.Now
	}
	return &Signal{url: url, secret: secret, client: client, now: now}, nil
}

// ID implements flow.Signal.
func (s *Signal) ID() string { return "webhook " + s.url }

// Kind implements flow.Signal.
func (s *Signal) Kind() string { return "webhook" }

// Deliver implements flow.Signal: a 2xx answer is a delivery; a 429 or 503
// with Retry-After asks for a later retry; anything else is a failure.
func (s *Signal) Deliver(ctx context.Context, ev *flow.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("creating webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-bothandoff")
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderSignature, Sign(s.secret, s.now(), body))

	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may hold a key in its query; the error keeps only what
		// went wrong, since it is stored with the delivery and logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook answered %d", resp.StatusCode)
	if after, ok := flow.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
		return &flow.RetryAfterError{After: after, Err: err}
	}
	return err
}

// Sign returns the signature header value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	ErrMalformed = errors.New("webhook: malformed signature header")
	ErrSignature = errors.New("webhook: signature does not match")
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
)

// Verify checks a signature header against body, as a bot receiving the
// webhook does. The timestamp must be within tolerance of now, either way;
// any v1 signature in the header may match, so secrets can be rotated.
func Verify(secret []byte, header string, body []byte, now time.Time,
	tolerance time.Duration) error {
	if len(header) > 1024 {
		return ErrMalformed
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return ErrMalformed
		case k == "t":
			ts = v
		case k == "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return ErrMalformed
			}
			sigs = append(sigs, sig)
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}

	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignature
}

var _ flow.Signal = (*Signal)(nil)
