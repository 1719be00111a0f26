package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

var secret = []byte("webhook-secret-webhook-secret-webhook")

func TestSignAndVerify(t *testing.T) {
	now := time.Unix(1796000000, 0)
	body := []byte(`{"type":"handoff.completed"}`)
	sig := webhook.Sign(secret, now, body)

	if err := webhook.Verify(secret, sig, body, now.Add(time.Minute), webhook.DefaultTolerance); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	cases := []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"other body", sig, []byte(`{}`), now, webhook.ErrSignature},
		{"other secret", webhook.Sign([]byte("x"), now, body), body, now, webhook.ErrSignature},
		{"too old", sig, body, now.Add(10 * time.Minute), webhook.ErrTimestamp},
		{"from the future", sig, body, now.Add(-10 * time.Minute), webhook.ErrTimestamp},
		{"no signature", "t=1796000000", body, now, webhook.ErrMalformed},
		{"not hex", "t=1796000000,v1=zz", body, now, webhook.ErrMalformed},
		{"garbage", "nonsense", body, now, webhook.ErrMalformed},
	}
	for _, c := range cases {
		if err := webhook.Verify(secret, c.header, c.body, c.at, webhook.DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v; want %v", c.name, err, c.want)
		}
	}

	// During a rotation the header may carry two signatures.
	both := sig + ",v1=" + webhook.Sign([]byte("new"), now, body)[len("t=1796000000,v1="):]
	if err := webhook.Verify(secret, both, body, now, webhook.DefaultTolerance); err != nil {
		t.Errorf("rotation header refused: %v", err)
	}
}

func TestDeliver(t *testing.T) {
	var got flow.Event
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(),
			webhook.DefaultTolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_ = json.Unmarshal(body, &got)
		if r.Header.Get(webhook.HeaderDelivery) != got.ID {
			http.Error(w, "delivery header", http.StatusBadRequest)
			return
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "120")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()

	s, err := webhook.New(srv.URL, secret, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &flow.Event{Type: flow.EventCompleted, ID: "ev1", FlowID: "f1"}
	if err := s.Deliver(context.Background(), ev); err != nil || got.ID != "ev1" {
		t.Fatalf("Deliver = %v; got %+v", err, got)
	}

	status = http.StatusTooManyRequests
	var ra *flow.RetryAfterError
	if err := s.Deliver(context.Background(), ev); !errors.As(err, &ra) || ra.After != 2*time.Minute {
		t.Errorf("429: got %v; want retry after 2m", err)
	}
	status = http.StatusInternalServerError
	if err := s.Deliver(context.Background(), ev); err == nil {
		t.Error("500 counted as delivered")
	}

	// A redirect is not followed: its GET's 2xx would look like a delivery.
	moved := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusSeeOther))
	defer moved.Close()
	status = http.StatusNoContent
	s, _ = webhook.New(moved.URL+"?key=do-not-log", secret, nil, nil)
	if err := s.Deliver(context.Background(), ev); err == nil {
		t.Error("a redirect counted as delivered")
	}
	s, _ = webhook.New("http://127.0.0.1:1/hook?key=do-not-log", secret, nil, nil)
	if err := s.Deliver(context.Background(), ev); err == nil || strings.Contains(err.Error(), "do-not-log") {
		t.Errorf("unreachable URL: %v; want an error without the URL's query", err)
	}
}

func TestNewRefusesWeakConfig(t *testing.T) {
	if _, err := webhook.New("ftp://x", secret, nil, nil); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := webhook.New("https://x", []byte("short"), nil, nil); err == nil {
		t.Error("short secret accepted")
	}
}
