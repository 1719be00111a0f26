package botkit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

const event = `{"type":"handoff.completed","id":"ev-1","createdAt":"2026-05-01T12:00:00Z",
	"flowId":"f-1","flow":"signin","kind":"oauth","status":"completed",
	"ref":{"channelId":"msteams","serviceUrl":"https://smba.example/","conversation":{"id":"c"},
	"user":{"id":"u"}}}`

func TestParseState(t *testing.T) {
	cases := []struct {
		name, record, property string
		want                   string // the event's ID, or "" for none
		err                    error
	}{
		{"data object", `{"dialogStack":[],"handoff":` + event + `}`, "", "ev-1", nil},
		{"State API answer", `{"data":{"handoff":` + event + `},"eTag":"*"}`, "", "ev-1", nil},
		{"own property", `{"data":{"signin":` + event + `}}`, "signin", "ev-1", nil},
		{"no event yet", `{"dialogStack":[]}`, "", "", nil},
		{"empty API answer", `{"data":{},"eTag":"*"}`, "", "", nil},
		{"bot data named data", `{"data":[1,2]}`, "", "", nil},
		{"null", `{"handoff":null}`, "", "", nil},
		{"not an event", `{"handoff":{"type":"something"}}`, "", "", botkit.ErrNotEvent},
		{"no reference", `{"handoff":{"type":"handoff.failed","flowId":"f"}}`, "", "",
			botkit.ErrNotEvent},
	}
	for _, c := range cases {
		ev, err := botkit.ParseState([]byte(c.record), c.property)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: error %v; want %v", c.name, err, c.err)
			continue
		}
		id := ""
		if ev != nil {
			id = ev.ID
		}
		if id != c.want {
			t.Errorf("%s: event %q; want %q", c.name, id, c.want)
		}
	}
	if _, err := botkit.ParseState([]byte(`[`), ""); err == nil {
		t.Error("malformed record accepted")
	}
}

func TestParseEvent(t *testing.T) {
	ev, err := botkit.ParseEvent([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != flow.EventCompleted || ev.Kind != "oauth" || ev.Ref.User.ID != "u" ||
		!ev.CreatedAt.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("event = %+v", ev)
	}
}

func TestWebhook(t *testing.T) {
	secret := []byte("test-webhook-secret-0123456789abcdef")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var handled []string
	var fail error
	hook := &botkit.Webhook{Secret: secret, Now: func() time.Time { return now },
		Handle: func(_ context.Context, ev *botkit.Event) error {
			handled = append(handled, ev.ID)
			return fail
		}}
	send := func(method, sig, delivery, body string) int {
		req := httptest.NewRequest(method, "/hook", strings.NewReader(body))
		req.Header.Set(webhook.HeaderSignature, sig)
		req.Header.Set(webhook.HeaderDelivery, delivery)
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, req)
		return rec.Code
	}
	signed := func(body string) string { return webhook.Sign(secret, now, []byte(body)) }

	cases := []struct {
		name, method, sig, delivery, body string
		want                              int
	}{
		{"signed", "POST", signed(event), "ev-1", event, http.StatusNoContent},
		{"forged", "POST", webhook.Sign([]byte("other-secret-0123456789abcdef-xx"), now,
			[]byte(event)), "ev-1", event, http.StatusUnauthorized},
		{"old", "POST", webhook.Sign(secret, now.Add(-time.Hour), []byte(event)), "ev-1", event,
			http.StatusUnauthorized},
		{"no signature", "POST", "", "ev-1", event, http.StatusUnauthorized},
		{"other delivery", "POST", signed(event), "ev-9", event, http.StatusBadRequest},
		{"not an event", "POST", signed(`{"type":"x"}`), "", `{"type":"x"}`, http.StatusBadRequest},
		{"GET", "GET", signed(event), "ev-1", event, http.StatusMethodNotAllowed},
		{"too large", "POST", "", "", strings.Repeat(" ", 2<<20), http.StatusBadRequest},
	}
	for _, c := range cases {
		if got := send(c.method, c.sig, c.delivery, c.body); got != c.want {
			t.Errorf("%s: answered %d; want %d", c.name, got, c.want)
		}
	}
	if len(handled) != 1 {
		t.Errorf("handled %v; want only the signed event", handled)
	}

	fail = errors.New("database down")
	if got := send("POST", signed(event), "ev-1", event); got != http.StatusServiceUnavailable {
		t.Errorf("Handle failing: answered %d; want 503, so the delivery is retried", got)
	}

	hook.Secret = nil
	got := send("POST", webhook.Sign(nil, now, []byte(event)), "ev-1", event)
	if got != http.StatusInternalServerError {
		t.Errorf("no secret: answered %d; want 500", got)
	}
}
