package payment_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/flowtest"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

var linkSecret = []byte("0123456789abcdef0123456789abcdef-link")

// shop is an engine with the payment flow "shop" behind a test server.
type shop struct {
	*fixture
	engine *flow.Engine
	server *httptest.Server
	signal *flowtest.Recorder
	bot    *botkit.Client
}

func newShop(t *testing.T) *shop {
	t.Helper()
	fx := newFixture(t, testKey)
	key, _ := flow.SecretKey("", linkSecret)
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}, Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	rec := &flowtest.Recorder{}
	e, err := flow.New(flow.Config{
		Verifier: v, Store: memstore.New(fx.clock.Now), Keys: kr, Now: fx.clock.Now,
		Flows:   map[string]flow.FlowConfig{"shop": {Provider: fx.p, TTL: time.Hour}},
		Signals: []flow.Signal{rec}, Logger: slog.New(slog.NewTextHandler(fx.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = e.ServeHTTP(w, r, func(w http.ResponseWriter, _ *http.Request) error {
			http.NotFound(w, r)
			return nil
		})
	}))
	t.Cleanup(srv.Close)
	signer, _ := flow.SecretSigner("", linkSecret)
	bot := &botkit.Client{URL: srv.URL + "/handoff", Signer: signer, Now: fx.clock.Now}
	return &shop{fixture: fx, engine: e, server: srv, signal: rec, bot: bot}
}

var ann = flow.Ref{
	ChannelID: "msteams", ServiceURL: "https://smba.example.com/",
	Conversation: flow.Conversation{ID: "conv-1"}, User: flow.Account{ID: "ann"},
}

// start opens a payment link in a new browser and returns the browser and
// the checkout URL it was sent to.
func (s *shop) start(data map[string]any) (*http.Client, *http.Response) {
	s.t.Helper()
	link, err := s.bot.Link("shop", ann, data, 10*time.Minute)
	if err != nil {
		s.t.Fatal(err)
	}
	b := flowtest.Browser()
	resp, err := flowtest.Continue(b, link)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return b, resp
}

var tea = map[string]any{"amount": 1999, "currency": "eur", "description": "Tea", "orderId": "o-1"}

var numberPattern = regexp.MustCompile(`data-code="(\d+)"`)

func TestReturnAndWebhookRaceCompleteOnce(t *testing.T) {
	for i := range 10 {
		s := newShop(t)
		b, resp := s.start(tea)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("start: %d", resp.StatusCode)
		}
		sess := s.session()
		if err := s.fake.Pay(sess.ID, stripefake.Payment{}); err != nil {
			t.Fatal(err)
		}
		ev, _ := s.fake.LastEvent("checkout.session.completed", sess.ID)
		success := strings.ReplaceAll(sess.SuccessURL, "{CHECKOUT_SESSION_ID}", sess.ID)

		var wg sync.WaitGroup
		var page string
		wg.Go(func() {
			resp, err := b.Get(success)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(body)
		})
		wg.Go(func() {
			status, err := s.fake.Send(context.Background(), s.server.URL+"/handoff/webhook/shop", ev)
			if err != nil || status != http.StatusOK {
				t.Errorf("webhook: %d, %v", status, err)
			}
		})
		wg.Wait()

		m := numberPattern.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("round %d: no number on the return page: %s", i, page)
		}
		s.engine.Work(context.Background())
		if evs := s.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventCompleted {
			t.Fatalf("round %d: events %+v; want one completion", i, evs)
		}
		res, err := s.bot.Verify(context.Background(), ann.Key(), m[1])
		if err != nil || !strings.Contains(string(res.Result), sess.ID) {
			t.Fatalf("round %d: verify: %+v, %v", i, res, err)
		}
	}
}

func TestBadLinkDataMakesNoSession(t *testing.T) {
	s := newShop(t)
	_, resp := s.start(map[string]any{"amount": "19.99", "currency": "eur"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("start with bad data: %d; want 400", resp.StatusCode)
	}
	if n := len(s.fake.Sessions()); n != 0 {
		t.Errorf("%d sessions made; want none", n)
	}
	if _, err := s.bot.Status(context.Background(), ann.Key()); !botkit.IsCode(err, "no_flow") {
		t.Errorf("status: %v; want no_flow", err)
	}
}

func TestResultDecodes(t *testing.T) {
	// Bots written in Go decode the verify result into payment.Result.
	s := newShop(t)
	b, _ := s.start(tea)
	sess := s.session()
	_ = s.fake.Pay(sess.ID, stripefake.Payment{Email: "ann@example.com"})
	success := strings.ReplaceAll(sess.SuccessURL, "{CHECKOUT_SESSION_ID}", sess.ID)
	resp, err := b.Get(success)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := numberPattern.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no number: %s", body)
	}
	res, err := s.bot.Verify(context.Background(), ann.Key(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	var got payment.Result
	if err := json.Unmarshal(res.Result, &got); err != nil || got.CustomerEmail != "ann@example.com" {
		t.Errorf("result = %+v, %v", got, err)
	}
}

func TestPaymentInAnOldTabIsLogged(t *testing.T) {
	s := newShop(t)
	s.start(tea)
	old := s.session()

	// The bot sends a newer link, which replaces the flow; the user then
	// pays in the old tab.
	s.clock.Advance(time.Second)
	s.start(tea)
	if err := s.fake.Pay(old.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}
	ev, _ := s.fake.LastEvent("checkout.session.completed", old.ID)
	status, err := s.fake.Send(context.Background(), s.server.URL+"/handoff/webhook/shop", ev)
	if err != nil || status != http.StatusOK {
		t.Fatalf("webhook: %d, %v", status, err)
	}

	logs := s.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, old.ID) ||
		!strings.Contains(logs, "superseded") {
		t.Errorf("logs = %q; want an error naming the session", logs)
	}
	if st, err := s.bot.Status(context.Background(), ann.Key()); err != nil ||
		st.Status != flow.StatusPending {
		t.Errorf("the newer flow: %+v, %v; want pending", st, err)
	}
}
