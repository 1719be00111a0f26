package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveAPI handles the bot API under {prefix}/api/.
func (e *Engine) serveAPI(w http.ResponseWriter, r *http.Request, name string) {
	method := map[string]string{
		"verify": http.MethodPost, "status": http.MethodGet, "cancel": http.MethodPost,
	}[name]
	if name == "test/clock" && e.testClock != nil {
		method = http.MethodPost
	}
	if method == "" {
		apiError(w, http.StatusNotFound, "not_found", "no such API", nil)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method, nil)
		return
	}
	if err := e.authorize(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "unauthorized", "a valid API token is required", nil)
		e.logErr(r.Context(), http.StatusUnauthorized, "unauthorized", err)
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	switch name {
	case "verify":
		e.apiVerify(w, r)
	case "status":
		e.apiStatus(w, r)
	case "cancel":
		e.apiCancel(w, r)
	case "test/clock":
		e.apiTestClock(w, r)
	}
}

// authorize checks the request's bearer API token.
func (e *Engine) authorize(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return fmt.Errorf("%w: no bearer token", ErrBadToken)
	}
	_, err := e.verify.API(strings.TrimSpace(token), e.audienceFor(r))
	return err
}

// verifyRequest is the body of a verify call.
type verifyRequest struct {
	Key
	Code string `json:"code"`
}

// VerifyResult is the answer to a verify call with the right number.
type VerifyResult struct {
	Status Status          `json:"status"`
	FlowID string          `json:"flowId"`
	Flow   string          `json:"flow"`
	Result json.RawMessage `json:"result"`
}

// CodeError is a wrong magic number, with the attempts left before the flow
// fails.
type CodeError struct{ AttemptsLeft int }

func (c *CodeError) Error() string {
	return fmt.Sprintf("invalid code, %d attempts left", c.AttemptsLeft)
}

func (c *CodeError) Unwrap() error { return ErrInvalidCode }

func (e *Engine) apiVerify(w http.ResponseWriter, r *http.Request) {
	if err := e.verifyPerIP.allow(e.clientIP(r), e.now()); err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	var req verifyRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	if err := req.Key.Validate(); err != nil {
		e.apiErr(w, r, "", err)
		return
	}

	res, flowName, err := e.verifyCode(r.Context(), e.convID(e.audienceFor(r), req.Key), req.Code)
	if err != nil {
		e.apiErr(w, r, flowName, err)
		return
	}
	e.obs.VerifyAttempt(res.Flow, "verified")
	writeJSON(w, http.StatusOK, res)
}

// verifyCode checks a code against the flow of a conversation and user,
// counting wrong tries exactly and releasing the result once.
func (e *Engine) verifyCode(ctx context.Context, conv, input string) (*VerifyResult, string,
	error) {
	code := NormalizeCode(input)
	var res *VerifyResult
	rec, err := e.update(ctx, conv, func(rec *Record, now time.Time) (txn, error) {
		res = nil
		if t, done := e.verifyGate(rec, now); done {
			return t, nil
		}
		if !rec.NoNumber && rec.Digits > 0 && len(code) != rec.Digits {
			// Text that cannot be the number is no guess at it.
			return txn{result: fmt.Errorf("%w: want %d digits", ErrMalformedCode, rec.Digits)}, nil
		}

		if !Equal(rec.CodeMAC, e.codeMAC(rec.ID, code)) {
			rec.Attempts++
			if rec.Attempts >= e.maxAttempts {
				t := e.fail(rec, "too_many_attempts", now)
				t.result = ErrLocked
				return t, nil
			}
			return txn{write: true, result: &CodeError{AttemptsLeft: e.maxAttempts - rec.Attempts}}, nil
		}

		result, err := e.keys.Open(rec.Result, "result:"+rec.ID)
		if err != nil {
			return txn{}, fmt.Errorf("opening result: %w", err)
		}
		res = &VerifyResult{Status: StatusVerified, FlowID: rec.ID, Flow: rec.Flow, Result: result}
		rec.Status = StatusVerified
		rec.wipe()
		return txn{write: true, ops: []Op{Unschedule(flowKey(rec.Conv))}}, nil
	})
	name := ""
	if rec != nil {
		name = rec.Flow
	}
	return res, name, err
}

// verifyGate decides a verify call without looking at the code when the
// flow is not waiting for one; the decision is in the txn's result. done is
// false when the code must be checked.
func (e *Engine) verifyGate(rec *Record, now time.Time) (t txn, done bool) {
	switch rec.Status {
	case StatusPending:
		if !now.Before(rec.Deadline) {
			return e.expireNow(rec, now, ErrExpired), true
		}
		return txn{result: ErrNotCompleted}, true
	case StatusCompleted:
		if !now.Before(rec.CodeExpires) {
			return e.expireNow(rec, now, ErrExpired), true
		}
		return txn{}, false
	case StatusVerified:
		return txn{result: ErrFinished}, true
	case StatusFailed:
		if rec.Error == "too_many_attempts" {
			return txn{result: ErrLocked}, true
		}
		return txn{result: ErrFinished}, true
	case StatusExpired:
		return txn{result: ErrExpired}, true
	}
	return txn{result: ErrNoFlow}, true
}

// StatusInfo is the answer to a status call.
type StatusInfo struct {
	Status    Status    `json:"status"`
	Flow      string    `json:"flow"`
	FlowID    string    `json:"flowId"`
	Kind      string    `json:"kind"`
	Error     string    `json:"error,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// ExpiresAt is when a pending flow or a completed flow's number expires.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

func (e *Engine) apiStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k := Key{
		ChannelID:      q.Get("channelId"),
		ConversationID: q.Get("conversationId"),
		UserID:         q.Get("userId"),
	}
	if err := k.Validate(); err != nil {
		e.apiErr(w, r, "", err)
		return
	}

	rec, err := e.loadConv(r.Context(), e.convID(e.audienceFor(r), k))
	if err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, e.statusOf(rec))
}

// statusOf reports a record's status, counting a deadline that passed as
// expired before the worker gets to it.
func (e *Engine) statusOf(rec *Record) StatusInfo {
	now := e.now()
	info := StatusInfo{Status: rec.Status, Flow: rec.Flow, FlowID: rec.ID, Kind: rec.Kind,
		Error: rec.Error, UpdatedAt: rec.Updated.UTC()}
	var exp time.Time
	switch rec.Status {
	case StatusPending:
		exp = rec.Deadline
	case StatusCompleted:
		exp = rec.CodeExpires
	}
	if !exp.IsZero() {
		if !now.Before(exp) {
			info.Status, info.UpdatedAt = StatusExpired, exp.UTC()
		} else {
			exp = exp.UTC()
			info.ExpiresAt = &exp
		}
	}
	return info
}

func (e *Engine) apiCancel(w http.ResponseWriter, r *http.Request) {
	var k Key
	if err := decodeJSON(r.Body, &k); err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	if err := k.Validate(); err != nil {
		e.apiErr(w, r, "", err)
		return
	}

	conv := e.convID(e.audienceFor(r), k)
	rec, err := e.update(r.Context(), conv, func(rec *Record, now time.Time) (txn, error) {
		switch rec.Status {
		case StatusPending, StatusCompleted:
			rec.Status, rec.Waiting = StatusCancelled, false
			rec.wipe()
			return txn{write: true, ops: []Op{Unschedule(flowKey(rec.Conv))}}, nil
		case StatusCancelled:
			return txn{}, nil
		}
		return txn{}, ErrFinished
	})
	if err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, e.statusOf(rec))
}

// apiTestClock moves the test clock forward. It exists only when the
// operator turned on the insecure test clock.
func (e *Engine) apiTestClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Advance string `json:"advance"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	d, err := time.ParseDuration(req.Advance)
	if err != nil || d <= 0 {
		e.apiErr(w, r, "", fmt.Errorf("%w: advance must be a positive duration", ErrBadRequest))
		return
	}
	e.testClock.Advance(d)
	e.kick()
	writeJSON(w, http.StatusOK, map[string]string{"now": e.now().UTC().Format(time.RFC3339Nano)})
}

// loadConv returns the record of a conversation and user.
func (e *Engine) loadConv(ctx context.Context, conv string) (*Record, error) {
	ent, err := e.store.Get(ctx, flowKey(conv))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoFlow
	}
	if err != nil {
		return nil, fmt.Errorf("reading flow: %w", err)
	}
	return unmarshalRecord(ent.Value)
}

// apiErrors maps engine errors to the bot API's error codes and statuses.
var apiErrors = []struct {
	err    error
	status int
	code   string
}{
	{ErrInvalidCode, http.StatusUnprocessableEntity, "invalid_code"},
	{ErrMalformedCode, http.StatusBadRequest, "malformed_code"},
	{ErrLocked, http.StatusLocked, "locked"},
	{ErrExpired, http.StatusGone, "expired"},
	{ErrNoFlow, http.StatusNotFound, "no_flow"},
	{ErrNotCompleted, http.StatusConflict, "not_completed"},
	{ErrFinished, http.StatusConflict, "already_finished"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrStoreUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// apiErr answers a failed bot API call with the error's code and status.
func (e *Engine) apiErr(w http.ResponseWriter, r *http.Request, flowName string, err error) {
	status, code := http.StatusInternalServerError, "internal_error"
	for _, c := range apiErrors {
		if errors.Is(err, c.err) {
			status, code = c.status, c.code
			break
		}
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	}
	var rl *ErrRateLimited
	if errors.As(err, &rl) {
		status, code = http.StatusTooManyRequests, "rate_limited"
	}
	if strings.HasSuffix(r.URL.Path, "/verify") && flowName != "" {
		e.obs.VerifyAttempt(flowName, code)
	}

	var extra map[string]any
	var ce *CodeError
	if errors.As(err, &ce) {
		extra = map[string]any{"attemptsLeft": ce.AttemptsLeft}
	}
	setRetryAfter(w.Header(), status, err)
	e.logErr(r.Context(), status, code, err)
	apiError(w, status, code, publicMessage(status, err), extra)
}

// publicMessage is the message an API error carries: the engine's own
// wording for client errors, a fixed sentence for server errors.
func publicMessage(status int, err error) string {
	if status >= 500 {
		return http.StatusText(status)
	}
	return strings.TrimPrefix(err.Error(), "flow: ")
}

func apiError(w http.ResponseWriter, status int, code, msg string, extra map[string]any) {
	body := map[string]any{"error": code, "message": msg}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads one JSON object from a capped body.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return fmt.Errorf("%w: body must be a JSON object: %w", ErrBadRequest, err)
	}
	return nil
}
