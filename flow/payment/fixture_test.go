package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

const (
	testKey = "sk_test_fixture0123456789"
	liveKey = "sk_live_fixture0123456789"
	whsec   = "whsec_fixture0123456789abcdef"
)

// fixture is a provider pointed at a fake Stripe.
type fixture struct {
	t     *testing.T
	clock *storetest.Clock
	fake  *stripefake.Server
	p     *payment.Stripe
	logs  *syncBuffer
}

func newFixture(t *testing.T, key string) *fixture {
	t.Helper()
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	fake := stripefake.New(t, stripefake.Config{Key: key, WebhookSecret: whsec, Now: c.Now})
	logs := &syncBuffer{}
	p, err := payment.New(payment.Config{
		Name: "shop", SecretKey: key, WebhookSecret: whsec, APIURL: fake.URL,
		Now: c.Now, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, clock: c, fake: fake, p: p, logs: logs}
}

// newFlow returns a pending flow of the shop flow with payment data.
func (fx *fixture) newFlow(id string) *flow.Flow {
	return &flow.Flow{
		ID: id, Handle: "conv-" + id + "." + id, Name: "shop",
		Data:   json.RawMessage(`{"amount":1999,"currency":"EUR","description":"Tea","orderId":"o-1"}`),
		Origin: "https://shop.example", Prefix: "/handoff",
		Status: flow.StatusPending, Deadline: fx.clock.Now().Add(time.Hour),
	}
}

// begin begins f and keeps the state, as the engine does.
func (fx *fixture) begin(f *flow.Flow) *flow.Step {
	fx.t.Helper()
	step, err := fx.p.Begin(context.Background(), f)
	if err != nil {
		fx.t.Fatalf("begin: %v", err)
	}
	if step.State != nil {
		f.State = step.State
	}
	return step
}

// session returns the fake's newest session.
func (fx *fixture) session() stripefake.Session {
	fx.t.Helper()
	s, ok := fx.fake.Last()
	if !ok {
		fx.t.Fatal("no session made")
	}
	return s
}

// returnTo calls Return as the browser coming back with query q.
func (fx *fixture) returnTo(f *flow.Flow, q url.Values) (*flow.Outcome, error) {
	r := httptest.NewRequest(http.MethodGet, "https://shop.example/handoff/return?"+q.Encode(), nil)
	return fx.p.Return(context.Background(), f, r)
}

// paidReturn returns with the flow's session.
func (fx *fixture) paidReturn(f *flow.Flow, session string) (*flow.Outcome, error) {
	return fx.returnTo(f, url.Values{"flow": {f.Handle}, "session_id": {session}})
}

// webhook hands an event to the provider, signed with header.
func (fx *fixture) webhook(body []byte, header string) (*flow.WebhookEvent, error) {
	r := httptest.NewRequest(http.MethodPost, "https://shop.example/handoff/webhook/shop",
		bytes.NewReader(body))
	if header != "" {
		r.Header.Set(payment.HeaderSignature, header)
	}
	return fx.p.Webhook(context.Background(), r, body)
}

// event returns the fake's newest event of a type about a session, signed
// now.
func (fx *fixture) event(typ, session string) ([]byte, string) {
	fx.t.Helper()
	ev, err := fx.fake.LastEvent(typ, session)
	if err != nil {
		fx.t.Fatal(err)
	}
	body := ev.Body()
	return body, stripefake.Sign(body, whsec, fx.clock.Now())
}

func result(t *testing.T, out *flow.Outcome) payment.Result {
	t.Helper()
	if out == nil || out.Failure != "" || out.Waiting || out.Result == nil {
		t.Fatalf("outcome = %+v; want a result", out)
	}
	var res payment.Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newRawServer returns the URL of a server that answers body to anything.
func newRawServer(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// replayServer is a Stripe API that answers every request with a replayed
// error of one status, and keeps the idempotency keys it was asked under.
type replayServer struct {
	URL  string
	mu   sync.Mutex
	keys []string
}

func newReplayServer(t *testing.T, status int) *replayServer {
	t.Helper()
	typ := "invalid_request_error"
	if status >= http.StatusInternalServerError {
		typ = "api_error"
	}
	body := `{"error":{"type":"` + typ + `","message":"replayed"}}`
	rs := &replayServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.keys = append(rs.keys, r.Header.Get("Idempotency-Key"))
		rs.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	rs.URL = srv.URL
	return rs
}

// Keys returns the idempotency keys asked under, in order, and forgets them.
func (rs *replayServer) Keys() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	k := rs.keys
	rs.keys = nil
	return k
}
