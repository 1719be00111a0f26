package redisstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/flowtest"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

// counter is a go-redis hook that counts commands sent, which with no
// pipelining are round trips.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// The round trips to Redis of each step a user or the bot takes in a site
// flow, measured on a real engine. The engine reads before it writes, and
// each store method is one round trip, also when it waits for a replica;
// these are the totals it makes now, and a change that adds a round trip
// to a step fails here.
func TestRoundTripsPerStep(t *testing.T) {
	t.Run("alone", func(t *testing.T) { roundTripsPerStep(t, 0) })
	t.Run("waiting for a replica", func(t *testing.T) { roundTripsPerStep(t, 1) })
}

func roundTripsPerStep(t *testing.T, replicas int) {
	srv := redistest.Start(t)
	if replicas > 0 {
		redistest.StartReplica(t, srv)
	}
	count := &counter{}
	client := closeAtEnd(t, redis.NewClient(&redis.Options{Addr: srv.Addr}))
	client.AddHook(count)
	h := newEngineEnv(t, waitingStore(t, client, waiting(replicas)))

	// The first flow loads the scripts into Redis; the second is measured.
	h.runFlow(t, "warm-up", nil)
	steps := map[string]int64{}
	h.runFlow(t, "user-1", func(step string, f func()) {
		before := count.n.Load()
		f()
		steps[step] = count.n.Load() - before
	})

	want := map[string]int64{
		"continue page": 0,
		"start":         2, // the flow (an older one?), the write (fails if the link was used)
		"task page":     1, // the flow, for the site's headers
		"completion":    2, // the flow for the site's headers, the write that settles it
		"verify":        2, // the flow, the write
		"status":        1, // the flow
	}
	for step, n := range want {
		if steps[step] > n {
			t.Errorf("%s: %d round trips; want at most %d", step, steps[step], n)
		}
	}
	t.Logf("round trips per step: %v", steps)
}

// engineEnv is an engine on the store behind an httptest server, with a
// site flow whose task completes at /checkout/done.
type engineEnv struct {
	srv *httptest.Server
	bot *botkit.Client
}

var secret = []byte("0123456789abcdef0123456789abcdef-redis")

func newEngineEnv(t *testing.T, st flow.Store) *engineEnv {
	t.Helper()
	key, _ := flow.SecretKey("", secret)
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := flow.New(flow.Config{
		Verifier: v, Store: st, Keys: kr,
		Flows: map[string]flow.FlowConfig{"checkout": {Provider: &flow.Site{Path: "/checkout"}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	site := func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Path == "/checkout/done" {
			w.Header().Set(flow.HeaderComplete, `{"ok":true}`)
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = e.ServeHTTP(w, r, site)
	}))
	t.Cleanup(srv.Close)
	signer, _ := flow.SecretSigner("", secret)
	return &engineEnv{srv: srv, bot: &botkit.Client{URL: srv.URL + "/handoff", Signer: signer}}
}

var codeOnPage = regexp.MustCompile(`data-code="(\d+)"`)

// runFlow runs a site flow for user from link to verified, passing each
// step to measure, if set.
func (h *engineEnv) runFlow(t *testing.T, user string, measure func(string, func())) {
	t.Helper()
	if measure == nil {
		measure = func(_ string, f func()) { f() }
	}
	ref := flow.Ref{ChannelID: "test", ServiceURL: "https://example.com/",
		Conversation: flow.Conversation{ID: "c"}, User: flow.Account{ID: user}}
	link, err := h.bot.Link("checkout", ref, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b := flowtest.Browser()
	do := func(method, u string, body io.Reader) string {
		req, _ := http.NewRequest(method, u, body)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", h.srv.URL)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			t.Fatalf("%s %s: %d: %s", method, u, resp.StatusCode, page)
		}
		return string(page)
	}

	token := link[strings.Index(link, "t=")+2:]
	token, _ = url.QueryUnescape(token)
	var page string
	ctx := context.Background()
	measure("continue page", func() { do(http.MethodGet, link, nil) })
	measure("start", func() {
		form := url.Values{"t": {token}}.Encode()
		do(http.MethodPost, h.srv.URL+"/handoff/start", strings.NewReader(form))
	})
	measure("task page", func() { do(http.MethodGet, h.srv.URL+"/checkout", nil) })
	measure("completion", func() { page = do(http.MethodGet, h.srv.URL+"/checkout/done", nil) })
	m := codeOnPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no number on the finish page: %s", page)
	}
	measure("verify", func() {
		if _, err := h.bot.Verify(ctx, ref.Key(), m[1]); err != nil {
			t.Fatalf("verify: %v", err)
		}
	})
	measure("status", func() {
		if st, err := h.bot.Status(ctx, ref.Key()); err != nil || st.Status != flow.StatusVerified {
			t.Fatalf("status = %+v, %v", st, err)
		}
	})
}
