package botstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/botstate"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stateapi"
)

const (
	appID       = "00000000-1111-2222-3333-444444444444"
	appPassword = "app-password-not-for-logs"
)

// epoch is when the tests' events happen.
var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// ref has IDs with every character a path could trip on.
var ref = flow.Ref{
	ChannelID: "msteams", ServiceURL: "https://smba.example.com/",
	Conversation: flow.Conversation{ID: "19:a/b?c#d%e f@thread.v2"},
	User:         flow.Account{ID: ".."},
}

// private is the record of ref's private data.
var private = stateapi.Bag{
	Channel: ref.ChannelID, Conversation: ref.Conversation.ID, User: ref.User.ID,
}

func startFake(t *testing.T) *stateapi.Server {
	return stateapi.Start(t, stateapi.Options{AppID: appID, AppPassword: appPassword})
}

func newSignal(t *testing.T, fake *stateapi.Server, opts ...func(*botstate.Config),
) *botstate.Signal {
	t.Helper()
	cfg := botstate.Config{
		Endpoint: fake.URL, TokenURL: fake.TokenURL, AppID: appID, AppPassword: appPassword,
		Now: func() time.Time { return epoch },
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := botstate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// event returns an event made at epoch plus d.
func event(id, typ string, d time.Duration) *flow.Event {
	return &flow.Event{
		Type: typ, ID: id, CreatedAt: epoch.Add(d), FlowID: "flow-1", Flow: "checkout",
		Kind: "site", Status: flow.StatusCompleted, Ref: ref,
	}
}

// handoff returns the event under the handoff property of bag.
func handoff(t *testing.T, fake *stateapi.Server, bag stateapi.Bag) flow.Event {
	t.Helper()
	data, _ := fake.Record(bag)
	var ev flow.Event
	if err := json.Unmarshal(data["handoff"], &ev); err != nil {
		t.Fatalf("handoff property: %v in %s", err, data)
	}
	return ev
}

func TestMergeKeepsTheBotsKeys(t *testing.T) {
	fake := startFake(t)
	mine := `{"dialogStack":[{"id":"auth","state":{"step":2}}],"big":12345678901234567890,` +
		`"name":"Zoë <b>&amp;</b> \u00e9","handoff":"the bot's own placeholder"}`
	fake.PutRaw(private, mine)

	s := newSignal(t, fake)
	if err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0)); err != nil {
		t.Fatal(err)
	}

	data, _ := fake.Record(private)
	want := map[string]string{
		"dialogStack": `[{"id":"auth","state":{"step":2}}]`, "big": "12345678901234567890",
		"name": `"Zoë <b>&amp;</b> \u00e9"`,
	}
	for k, v := range want {
		if string(data[k]) != v {
			t.Errorf("%s = %s; want %s", k, data[k], v)
		}
	}
	if ev := handoff(t, fake, private); ev.ID != "ev-1" || ev.Ref.User.ID != ".." {
		t.Errorf("handoff = %+v", ev)
	}
}

func TestDataScopes(t *testing.T) {
	cases := []struct {
		data botstate.Data
		bag  stateapi.Bag
	}{
		{"", private},
		{botstate.PrivateData, private},
		{botstate.UserData, stateapi.Bag{Channel: "msteams", User: ".."}},
		{botstate.ConversationData, stateapi.Bag{Channel: "msteams", Conversation: ref.Conversation.ID}},
	}
	for _, c := range cases {
		t.Run(string(c.data), func(t *testing.T) {
			fake := startFake(t)
			s := newSignal(t, fake, func(cfg *botstate.Config) { cfg.Data = c.data })
			if err := s.Deliver(context.Background(), event("ev-1", flow.EventExpired, 0)); err != nil {
				t.Fatal(err)
			}
			if w := fake.Writes(); len(w) != 1 || w[0].Bag != c.bag {
				t.Fatalf("writes = %+v; want one to %+v", w, c.bag)
			}
		})
	}
}

func TestCustomProperty(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake, func(c *botstate.Config) { c.Property = "signIn" })
	if err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0)); err != nil {
		t.Fatal(err)
	}
	if data, _ := fake.Record(private); data["signIn"] == nil || data["handoff"] != nil {
		t.Errorf("data = %s", data)
	}
}

func TestRepeatedDeliveryWritesOnce(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake)
	ev := event("ev-1", flow.EventCompleted, 0)
	for range 3 {
		if err := s.Deliver(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.Writes()); n != 1 {
		t.Errorf("%d writes; want 1", n)
	}
}

func TestOlderEventDoesNotUndoNewer(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake)
	ctx := context.Background()
	if err := s.Deliver(ctx, event("ev-new", flow.EventFailed, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, event("ev-old", flow.EventCompleted, 0)); err != nil {
		t.Fatal(err)
	}
	if ev := handoff(t, fake, private); ev.ID != "ev-new" {
		t.Errorf("handoff = %s; want the newer event", ev.ID)
	}
	if err := s.Deliver(ctx, event("ev-later", flow.EventExpired, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ev := handoff(t, fake, private); ev.ID != "ev-later" {
		t.Errorf("handoff = %s; want the latest event", ev.ID)
	}
}

func TestStaleETagIsReadAndMergedAgain(t *testing.T) {
	fake := startFake(t)
	fake.Put(private, "turn", 0)
	fake.RaceWrites(2, "turn")

	s := newSignal(t, fake)
	if err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0)); err != nil {
		t.Fatal(err)
	}
	if st := fake.Stats(); st.Stale != 2 || st.Writes != 1 {
		t.Errorf("stats = %+v; want 2 stale writes, then 1", st)
	}
	data, _ := fake.Record(private)
	if string(data["turn"]) != "1" || data["handoff"] == nil {
		t.Errorf("data = %s; want the other writer's last turn and the event", data)
	}
}

func TestEndlessConflictIsRetriedLater(t *testing.T) {
	fake := startFake(t)
	fake.Put(private, "turn", 0)
	fake.RaceWrites(100, "turn")
	s := newSignal(t, fake)
	err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	if !errors.Is(err, botstate.ErrConflict) || errors.Is(err, flow.ErrPermanent) {
		t.Errorf("err = %v; want a retryable conflict", err)
	}
}

func TestSizeLimit(t *testing.T) {
	fake := startFake(t)
	fake.Put(private, "history", strings.Repeat("x", stateapi.MaxData-200))
	s := newSignal(t, fake)

	err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	if !errors.Is(err, botstate.ErrTooLarge) || !errors.Is(err, flow.ErrPermanent) {
		t.Errorf("err = %v; want ErrTooLarge, permanent", err)
	}
	if n := len(fake.Writes()); n != 0 {
		t.Errorf("%d writes; want none", n)
	}
}

func TestDataNotAnObject(t *testing.T) {
	fake := startFake(t)
	fake.PutRaw(private, `["a list"]`)
	err := newSignal(t, fake).Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	if !errors.Is(err, botstate.ErrNotObject) || !errors.Is(err, flow.ErrPermanent) {
		t.Errorf("err = %v; want ErrNotObject, permanent", err)
	}
}

func TestFailuresTheOutboxRetries(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		wantAfter  time.Duration
	}{
		{"503 with seconds", http.StatusServiceUnavailable, "7", 7 * time.Second},
		{"429 with a date", http.StatusTooManyRequests,
			epoch.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{"503 bare", http.StatusServiceUnavailable, "", 0},
		{"500", http.StatusInternalServerError, "", 0},
		{"502", http.StatusBadGateway, "", 0},
		{"403", http.StatusForbidden, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := startFake(t)
			fake.Fail(c.status, c.retryAfter, 1)
			s := newSignal(t, fake)
			err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))

			var se *botstate.StatusError
			if !errors.As(err, &se) || se.Code != c.status || errors.Is(err, flow.ErrPermanent) {
				t.Fatalf("err = %v; want a retryable %d", err, c.status)
			}
			var ra *flow.RetryAfterError
			if got := errors.As(err, &ra); got != (c.wantAfter > 0) || (got && ra.After != c.wantAfter) {
				t.Errorf("err = %v; want retry after %s", err, c.wantAfter)
			}
			assertClean(t, err, fake)

			// The next attempt lands.
			if err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0)); err != nil {
				t.Errorf("after recovery: %v", err)
			}
		})
	}
}

func TestRejectedRequestIsPermanent(t *testing.T) {
	fake := startFake(t)
	fake.Fail(http.StatusBadRequest, "", 1)
	err := newSignal(t, fake).Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	if !errors.Is(err, botstate.ErrRejected) || !errors.Is(err, flow.ErrPermanent) {
		t.Errorf("err = %v; want ErrRejected, permanent", err)
	}
}

func TestWrongPassword(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake, func(c *botstate.Config) { c.AppPassword = "wrong-password-secret" })
	err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	if !errors.Is(err, botstate.ErrToken) || errors.Is(err, flow.ErrPermanent) {
		t.Fatalf("err = %v; want a retryable ErrToken", err)
	}
	if !strings.Contains(err.Error(), "401 invalid_client") {
		t.Errorf("err = %q; want the status and OAuth code", err)
	}
	if strings.Contains(err.Error(), "AADSTS") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("err = %q; leaks the answer or the password", err)
	}
	if st := fake.Stats(); st.TokensRefused != 1 || st.Reads != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTokenIsCachedAndRenewedWhenRefused(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake)
	ctx := context.Background()
	for i := range 3 {
		ev := event("ev-"+string(rune('a'+i)), flow.EventCompleted, time.Duration(i))
		if err := s.Deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Stats().TokensIssued; n != 1 {
		t.Errorf("%d tokens issued for 3 deliveries; want 1", n)
	}

	fake.RevokeTokens()
	err := s.Deliver(ctx, event("ev-d", flow.EventCompleted, time.Minute))
	if !errors.Is(err, botstate.ErrUnauthorized) || errors.Is(err, flow.ErrPermanent) {
		t.Fatalf("err = %v; want a retryable ErrUnauthorized", err)
	}
	assertClean(t, err, fake)
	if err := s.Deliver(ctx, event("ev-d", flow.EventCompleted, time.Minute)); err != nil {
		t.Fatalf("with a new token: %v", err)
	}
	if n := fake.Stats().TokensIssued; n != 2 {
		t.Errorf("%d tokens issued; want 2", n)
	}
}

func TestTimeoutWritesNothing(t *testing.T) {
	fake := startFake(t)
	s := newSignal(t, fake, func(c *botstate.Config) {
		c.Client = &http.Client{Timeout: 300 * time.Millisecond}
	})
	ctx := context.Background()
	if err := s.Deliver(ctx, event("ev-0", flow.EventCompleted, 0)); err != nil {
		t.Fatal(err) // fetches the token while the service is quick
	}

	fake.SetDelay(2 * time.Second)
	err := s.Deliver(ctx, event("ev-1", flow.EventCompleted, time.Second))
	if err == nil || errors.Is(err, flow.ErrPermanent) {
		t.Fatalf("err = %v; want a retryable timeout", err)
	}
	assertClean(t, err, fake)

	fake.SetDelay(0)
	if err := s.Deliver(ctx, event("ev-1", flow.EventCompleted, time.Second)); err != nil {
		t.Fatal(err)
	}
	if ev := handoff(t, fake, private); ev.ID != "ev-1" || len(fake.Writes()) != 2 {
		t.Errorf("handoff = %s after %d writes", ev.ID, len(fake.Writes()))
	}
}

func TestLostAnswerIsNotWrittenTwice(t *testing.T) {
	fake := startFake(t)
	fake.LoseAnswers(1)
	s := newSignal(t, fake)
	ev := event("ev-1", flow.EventCompleted, 0)
	if err := s.Deliver(context.Background(), ev); err == nil {
		t.Fatal("a lost answer was taken for a delivery")
	}
	if err := s.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Writes()); n != 1 {
		t.Errorf("%d writes; want 1", n)
	}
}

func TestFullEventCarriesNumberAndResult(t *testing.T) {
	fake := startFake(t)
	ev := event("ev-1", flow.EventCompleted, 0)
	ev.MagicNumber, ev.Result = "493027", json.RawMessage(`{"orderId":"o-7"}`)
	if err := newSignal(t, fake).Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	got := handoff(t, fake, private)
	if got.MagicNumber != "493027" || string(got.Result) != `{"orderId":"o-7"}` {
		t.Errorf("handoff = %+v", got)
	}
}

func TestNew(t *testing.T) {
	base := botstate.Config{Endpoint: "https://state.example.com/", AppID: "a", AppPassword: "p"}
	s, err := botstate.New(base)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.ID(), "bot_state https://state.example.com private"; got != want {
		t.Errorf("ID() = %q; want %q", got, want)
	}

	bad := []func(*botstate.Config){
		func(c *botstate.Config) { c.Endpoint = "http://state.example.com" },
		func(c *botstate.Config) { c.Endpoint = "state.example.com" },
		func(c *botstate.Config) { c.Endpoint = "https://state.example.com/?x=1" },
		func(c *botstate.Config) { c.Endpoint = "https://bot:secret@state.example.com" },
		func(c *botstate.Config) { c.TokenURL = "http://login.example.com/token" },
		func(c *botstate.Config) { c.AppPassword = "" },
		func(c *botstate.Config) { c.Data = "everyone" },
	}
	for i, b := range bad {
		cfg := base
		b(&cfg)
		if _, err := botstate.New(cfg); err == nil {
			t.Errorf("config %d: accepted %+v", i, cfg)
		}
	}

	cfg := base
	cfg.Endpoint = "http://127.0.0.1:8080"
	if _, err := botstate.New(cfg); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}

// assertClean fails if err names the user or conversation, or carries a
// token the fake issued.
func assertClean(t *testing.T, err error, fake *stateapi.Server) {
	t.Helper()
	msg := err.Error()
	leaks := append([]string{"19:a", "thread.v2", "%2E", appPassword}, fake.Tokens()...)
	for _, s := range leaks {
		if strings.Contains(msg, s) {
			t.Errorf("error %q leaks %q", msg, s)
		}
	}
}

func TestConcurrentDeliveriesToANewRecord(t *testing.T) {
	fake := startFake(t)
	fake.SetDelay(20 * time.Millisecond)
	s := newSignal(t, fake)
	raceOnNewRecords(t, fake, s, s)
}

func TestInstancesTakeTurnsOnANewRecord(t *testing.T) {
	fake := startFake(t)
	fake.SetDelay(20 * time.Millisecond)
	kr, err := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	if err != nil {
		t.Fatal(err)
	}
	locker := flow.NewStoreLocker(memstore.New(time.Now), kr, nil, nil)

	// Two instances sharing a store: each takes turns within itself, and
	// only the lock on the store holds them apart.
	one, two := newSignal(t, fake), newSignal(t, fake)
	one.UseLocker(locker)
	two.UseLocker(locker)
	raceOnNewRecords(t, fake, one, two)
}

// raceOnNewRecords delivers a newer event through one signal and an older
// one through another, at once, to records never written, whose eTag "*"
// matches any version: only taking turns keeps the older event from undoing
// the newer.
func raceOnNewRecords(t *testing.T, fake *stateapi.Server, newerBy, olderBy *botstate.Signal) {
	t.Helper()
	for i := range 5 {
		user := fmt.Sprintf("user-%d", i)
		older := event("old-"+user, flow.EventCompleted, 0)
		newer := event("new-"+user, flow.EventExpired, time.Minute)
		older.Ref.User.ID, newer.Ref.User.ID = user, user

		var wg sync.WaitGroup
		deliver := func(s *botstate.Signal, ev *flow.Event) {
			wg.Go(func() {
				if err := s.Deliver(context.Background(), ev); err != nil {
					t.Error(err)
				}
			})
		}
		deliver(newerBy, newer)
		deliver(olderBy, older)
		wg.Wait()

		bag := stateapi.Bag{Channel: ref.ChannelID, Conversation: ref.Conversation.ID, User: user}
		if ev := handoff(t, fake, bag); ev.ID != newer.ID {
			t.Errorf("round %d: %s holds %s; want %s", i, user, ev.ID, newer.ID)
		}
	}
}

func TestDeliveryWaitingForTheRecordGivesUp(t *testing.T) {
	fake := startFake(t)
	fake.SetDelay(500 * time.Millisecond)
	s := newSignal(t, fake)

	// The first delivery holds the record from before it fetches a token
	// until the slow service answers.
	go s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	for fake.Stats().TokensIssued == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Deliver(ctx, event("ev-2", flow.EventExpired, time.Minute))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want the deadline", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	fake := startFake(t)
	// A server that answers reads, and sends writes elsewhere with a 303,
	// which a client following it would turn into a read.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"data":null,"eTag":"*"}`)
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s := newSignal(t, fake, func(c *botstate.Config) { c.Endpoint = srv.URL })
	err := s.Deliver(context.Background(), event("ev-1", flow.EventCompleted, 0))
	var se *botstate.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusSeeOther {
		t.Errorf("err = %v; want the 303 as a failure", err)
	}
}
