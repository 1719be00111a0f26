package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stateapi"
)

// The bot's Microsoft app credentials, as the fake State API knows them.
const (
	stateAppID       = "11111111-2222-3333-4444-555555555555"
	stateAppPassword = "test-state-app-password-0123456789"
)

// botStateConfig says what a bot_state test's Caddyfile holds.
type botStateConfig struct {
	upstream string
	state    *stateapi.Server
	// hook is the webhook signal's URL, beside the state.
	hook string
	// store is storage or memory.
	store string
	// deliver is status or full.
	deliver string
	// password is the app_password argument.
	password string
}

func botStateCaddyfile(c botStateConfig) func(int) string {
	return func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store %s
		deliver %s
		insecure_test_clock
		site checkout {
			to /checkout
		}
		signal bot_state {
			endpoint %s
			app_id {env.MICROSOFT_APP_ID}
			app_password %s
			token_url %s
		}
		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	reverse_proxy %s
}
`, port, c.store, c.deliver, c.state.URL, c.password, c.state.TokenURL, c.hook,
			strings.TrimPrefix(c.upstream, "http://"))
	}
}

// botStateEnv is a handler signalling a fake State API, and a webhook
// beside it that receives every event too.
type botStateEnv struct {
	*siteEnv
	state  *stateapi.Server
	config botStateConfig
	// offset is how far the handler's test clock is ahead of real time.
	offset time.Duration
}

func newBotStateEnv(t *testing.T, store, deliver string, opts ...func(*botStateConfig),
) *botStateEnv {
	t.Helper()
	state := stateapi.Start(t, stateapi.Options{AppID: stateAppID, AppPassword: stateAppPassword})
	hooks := newHookReceiver()
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)

	cfg := botStateConfig{
		upstream: testSite(t).URL, state: state, hook: hookSrv.URL + "/hook",
		store: store, deliver: deliver, password: "{env.MICROSOFT_APP_PASSWORD}",
	}
	for _, o := range opts {
		o(&cfg)
	}
	env := slices.Concat(botEnv, []string{
		"MICROSOFT_APP_ID=" + stateAppID, "MICROSOFT_APP_PASSWORD=" + stateAppPassword,
	})
	c := startCaddy(t, botStateCaddyfile(cfg), env...)
	base := c.URL + "/handoff"
	return &botStateEnv{
		siteEnv: &siteEnv{caddy: c, hooks: hooks, base: base, bot: bot(t, base)},
		state:   state,
		config:  cfg,
	}
}

// advance moves the handler's clock, and the bot's with it.
func (s *botStateEnv) advance(t *testing.T, d time.Duration) {
	t.Helper()
	advanceClock(t, s.base, s.offset, d)
	s.offset += d
	offset := s.offset
	s.bot.Now = func() time.Time { return time.Now().Add(offset) }
}

// privateBag is the record of a reference's private conversation data.
func privateBag(ref flow.Ref) stateapi.Bag {
	return stateapi.Bag{Channel: ref.ChannelID, Conversation: ref.Conversation.ID, User: ref.User.ID}
}

// handoffIn returns the event under the handoff property of bag, if any.
func handoffIn(state *stateapi.Server, bag stateapi.Bag) (flow.Event, bool) {
	data, _ := state.Record(bag)
	var ev flow.Event
	if data["handoff"] == nil || json.Unmarshal(data["handoff"], &ev) != nil {
		return ev, false
	}
	return ev, true
}

// waitHandoff waits until bag holds an event that ok accepts; while it
// waits, tick (if set) runs every round, to move the clock past backoffs.
func waitHandoff(t *testing.T, state *stateapi.Server, bag stateapi.Bag, ok func(flow.Event) bool,
	tick func()) flow.Event {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if ev, found := handoffIn(state, bag); found && ok(ev) {
			return ev
		}
		if tick != nil {
			tick()
		}
		time.Sleep(100 * time.Millisecond)
	}
	ev, _ := handoffIn(state, bag)
	t.Fatalf("the state of %s never held the event; it holds %+v", bag.User, ev)
	return ev
}

func isType(typ string) func(flow.Event) bool {
	return func(ev flow.Event) bool { return ev.Type == typ }
}

// writesOf counts the accepted writes that put each event ID in place.
func writesOf(state *stateapi.Server) map[string]int {
	n, last := map[string]int{}, map[stateapi.Bag]string{}
	for _, w := range state.Writes() {
		var data struct{ Handoff flow.Event }
		_ = json.Unmarshal(w.Data, &data)
		if id := data.Handoff.ID; id != "" && id != last[w.Bag] {
			n[id]++
			last[w.Bag] = id
		}
	}
	return n
}

// assertWrittenOnce fails unless every ID was put in place by one write.
func assertWrittenOnce(t *testing.T, state *stateapi.Server, ids ...string) {
	t.Helper()
	n := writesOf(state)
	for _, id := range ids {
		if n[id] != 1 {
			t.Errorf("event %s was written %d times; want once (writes: %v)", id, n[id], n)
		}
	}
}

func TestBotStateMergeAndRetryOnStaleETag(t *testing.T) {
	s := newBotStateEnv(t, "storage", "status")
	alice, ctx := refFor("alice"), context.Background()
	bag := privateBag(alice)

	// The bot keeps its own data in the same record, and writes a turn
	// counter between the handler's read and its write.
	s.state.PutRaw(bag, `{"dialogStack":[{"id":"signIn","step":1}],"big":12345678901234567890}`)
	s.state.RaceWrites(1, "turn")

	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)
	ev := waitHandoff(t, s.state, bag, isType(flow.EventCompleted), nil)

	data, _ := s.state.Record(bag)
	if string(data["dialogStack"]) != `[{"id":"signIn","step":1}]` ||
		string(data["big"]) != "12345678901234567890" || string(data["turn"]) != "1" {
		t.Errorf("the bot's keys changed: %s", data)
	}
	if st := s.state.Stats(); st.Stale != 1 || st.Writes != 1 {
		t.Errorf("stats = %+v; want one stale write, then one write", st)
	}
	if ev.MagicNumber != "" || ev.Result != nil || ev.Ref.User.ID != alice.User.ID {
		t.Errorf("event = %+v; want status only, for alice", ev)
	}

	// The webhook beside it got the same event, and the number verifies.
	if hooks := s.hooks.waitEvents(t, 1); hooks[0].ID != ev.ID {
		t.Errorf("webhook got %s, state got %s", hooks[0].ID, ev.ID)
	}
	res, err := s.bot.Verify(ctx, alice.Key(), code)
	if err != nil || res.FlowID != ev.FlowID {
		t.Fatalf("verify = %+v, %v; want flow %s", res, err, ev.FlowID)
	}
	assertNoSecrets(t, s.caddy.Logs(), slices.Concat(
		[]string{code, link, stateAppPassword, linkSecret}, s.state.Tokens())...)
}

func TestBotStateOutageThenRecovery(t *testing.T) {
	s := newBotStateEnv(t, "memory", "status")
	ctx := context.Background()
	alice, bob, carol := refFor("alice"), refFor("bob"), refFor("carol")
	s.state.Fail(http.StatusServiceUnavailable, "", -1)

	// Alice completes; Bob completes, then locks his flow with wrong
	// numbers; Carol opens her link and walks away.
	codes := map[string]string{}
	for _, ref := range []flow.Ref{alice, bob} {
		link, _ := s.bot.Link("checkout", ref, nil, 10*time.Minute)
		codes[ref.User.ID] = s.finish(t, newBrowser(t), link)
	}
	wrong := "000000"
	if codes[bob.User.ID] == wrong {
		wrong = "999999"
	}
	for range flow.DefaultMaxAttempts {
		_, _ = s.bot.Verify(ctx, bob.Key(), wrong)
	}
	link, _ := s.bot.Link("checkout", carol, nil, 10*time.Minute)
	if resp, body := newBrowser(t).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("carol's start: %d: %s", resp.StatusCode, body)
	}

	// Half an hour later Carol's flow and Alice's number have expired.
	s.advance(t, 31*time.Minute)
	events := s.hooks.waitEvents(t, 5)
	if n := len(s.state.Writes()); n != 0 {
		t.Fatalf("%d writes during the outage", n)
	}

	// The service comes back, but loses the answers to its first writes.
	s.state.LoseAnswers(2)
	s.state.Recover()
	want := map[string]string{
		alice.User.ID: flow.EventExpired, bob.User.ID: flow.EventFailed, carol.User.ID: flow.EventExpired,
	}
	tick := func() { s.advance(t, 30*time.Second) }
	for _, ref := range []flow.Ref{alice, bob, carol} {
		waitHandoff(t, s.state, privateBag(ref), isType(want[ref.User.ID]), tick)
	}
	waitDelivered(t, s.caddy, "bot_state", len(events), tick)
	if st := s.state.Stats(); st.Failed == 0 || st.Reads < len(events)+2 {
		t.Errorf("stats = %+v; want failures, then a read per event and per lost answer", st)
	}

	// Every bag holds the newest of its events, each written once at most,
	// the newest exactly once.
	for _, ref := range []flow.Ref{alice, bob, carol} {
		newest := newestFor(events, ref)
		got, _ := handoffIn(s.state, privateBag(ref))
		if got.ID != newest.ID || (ref == bob && got.Error != "too_many_attempts") {
			t.Errorf("%s holds %+v; want %+v", ref.User.ID, got, newest)
		}
		assertWrittenOnce(t, s.state, newest.ID)
	}
	for id, n := range writesOf(s.state) {
		if n > 1 {
			t.Errorf("event %s written %d times", id, n)
		}
	}
}

// newestFor returns the newest of the events for ref's user.
func newestFor(events []flow.Event, ref flow.Ref) flow.Event {
	var newest flow.Event
	for _, ev := range events {
		if ev.Ref.User.ID == ref.User.ID && !ev.CreatedAt.Before(newest.CreatedAt) {
			newest = ev
		}
	}
	return newest
}

// waitDelivered waits until the handler logged n deliveries by the signal
// of kind, so none is left in the outbox.
func waitDelivered(t *testing.T, c *Caddy, kind string, n int, tick func()) {
	t.Helper()
	mark := `"msg":"event delivered","signal":"` + kind + `"`
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if strings.Count(c.Logs(), mark) >= n {
			return
		}
		tick()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d of %d %s deliveries logged", strings.Count(c.Logs(), mark), n, kind)
}

func TestBotStatePendingDeliveryLandsAfterRestart(t *testing.T) {
	s := newBotStateEnv(t, "storage", "status")
	alice := refFor("alice")
	s.state.Fail(http.StatusServiceUnavailable, "", -1)

	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	s.finish(t, newBrowser(t), link)
	waitLog(t, s.caddy, `"msg":"delivery failed; will retry","signal":"bot_state"`)

	// Caddy stops with the delivery in its outbox; the State API comes
	// back while it is down.
	s.caddy.Stop()
	if n := len(s.state.Writes()); n != 0 {
		t.Fatalf("%d writes before the restart", n)
	}
	s.state.Recover()
	s.caddy.Start()
	advanceClock(t, s.base, 0, leaseSkip) // the restarted clock starts at real time

	ev := waitHandoff(t, s.state, privateBag(alice), isType(flow.EventCompleted), nil)
	if hooks := s.hooks.waitEvents(t, 1); hooks[0].ID != ev.ID {
		t.Errorf("webhook got %s, state got %s", hooks[0].ID, ev.ID)
	}
	assertWrittenOnce(t, s.state, ev.ID)
}

// leaseSkip moves a test clock past the outbox's first retry delays, and
// past the lease of a claim (1m): a delivery whose retry was not stored
// before Caddy stopped comes back when its lease ends.
const leaseSkip = 2 * time.Minute

func TestBotStateDeliverFull(t *testing.T) {
	s := newBotStateEnv(t, "memory", "full")
	alice := refFor("alice")

	link, _ := s.bot.Link("checkout", alice, map[string]any{"orderId": "o-9"}, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)

	// The bot reads the number and result from its state and checks the
	// number the user pastes itself.
	ev := waitHandoff(t, s.state, privateBag(alice), isType(flow.EventCompleted), nil)
	var result map[string]string
	_ = json.Unmarshal(ev.Result, &result)
	if ev.MagicNumber != code || result["orderId"] != "order-7" ||
		!strings.Contains(result["data"], "o-9") {
		t.Errorf("event = %+v; want number %s and the site's result", ev, code)
	}
	assertNoSecrets(t, s.caddy.Logs(), slices.Concat(
		[]string{code, stateAppPassword}, s.state.Tokens())...)
}

func TestBotStateWrongPasswordThenFixed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "app-password")
	if err := os.WriteFile(file, []byte("wrong-app-password-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newBotStateEnv(t, "storage", "status", func(c *botStateConfig) {
		c.password = "{file." + file + "}"
	})
	alice := refFor("alice")

	// The token endpoint refuses the password: the delivery waits.
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	s.finish(t, newBrowser(t), link)
	waitLog(t, s.caddy, `"msg":"delivery failed; will retry","signal":"bot_state"`)
	if st := s.state.Stats(); st.TokensRefused == 0 || st.Writes != 0 {
		t.Fatalf("stats = %+v; want refused tokens and no write", st)
	}

	// The operator fixes the password and reloads; the same signal, by
	// endpoint and record, takes the waiting delivery over.
	if err := os.WriteFile(file, []byte(stateAppPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	s.caddy.Reload(botStateCaddyfile(s.config)(s.caddy.Port))
	advanceClock(t, s.base, 0, leaseSkip) // the reloaded clock starts at real time
	ev := waitHandoff(t, s.state, privateBag(alice), isType(flow.EventCompleted), nil)
	assertWrittenOnce(t, s.state, ev.ID)
	assertNoSecrets(t, s.caddy.Logs(), slices.Concat(
		[]string{"wrong-app-password", stateAppPassword, "AADSTS"}, s.state.Tokens())...)
}
