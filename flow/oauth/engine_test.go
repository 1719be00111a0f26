package oauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/flowtest"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

var linkSecret = []byte("0123456789abcdef0123456789abcdef-link")

// cluster is two instances sharing one store behind one origin, as behind a
// load balancer: each has its engine and its own provider, as two processes
// have. A request with the header Instance: 2 goes to the second.
type cluster struct {
	t       *testing.T
	idp     *fakeIdP
	engines [2]*flow.Engine
	srv     *httptest.Server
	bot     *botkit.Client
	signal  *flowtest.Recorder
}

// newCluster starts a cluster whose providers have the configuration of
// the fake identity provider, changed by opts.
func newCluster(t *testing.T, opts ...func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, idp: newFakeIdP(t, time.Now), signal: &flowtest.Recorder{}}
	st := memstore.New(time.Now)
	for i := range c.engines {
		c.engines[i] = c.engine(st, opts...)
	}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := c.engines[0]
		if r.Header.Get("Instance") == "2" {
			e = c.engines[1]
		}
		_ = e.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error {
			http.NotFound(w, r)
			return nil
		})
	}))
	t.Cleanup(c.srv.Close)

	signer, _ := flow.SecretSigner("", linkSecret)
	c.bot = &botkit.Client{URL: c.srv.URL + "/handoff", Signer: signer}
	return c
}

// engine returns one instance's engine on store st.
func (c *cluster) engine(st flow.Store, opts ...func(*Config)) *flow.Engine {
	cfg := Config{Issuer: c.idp.srv.URL, ClientID: testClientID, ClientSecret: testClientSecret}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	key, _ := flow.SecretKey("", linkSecret)
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}})
	if err != nil {
		c.t.Fatal(err)
	}
	kr, _ := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	e, err := flow.New(flow.Config{
		Verifier: v, Store: st, Keys: kr, Signals: []flow.Signal{c.signal},
		Flows: map[string]flow.FlowConfig{"signin": {Provider: p}},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

var jane = flow.Ref{
	ChannelID: "msteams", ServiceURL: "https://smba.example.com/",
	Conversation: flow.Conversation{ID: "conv-1"}, User: flow.Account{ID: "jane"},
}

// signIn opens a link in a new browser on the first instance, consents at
// the provider, and returns the browser and its callback URL.
func (c *cluster) signIn() (*http.Client, string) {
	c.t.Helper()
	link, err := c.bot.Link("signin", jane, nil, 10*time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	b := flowtest.Browser()
	resp, err := flowtest.Continue(b, link)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("start: %d", resp.StatusCode)
	}
	return b, c.idp.authorize(resp.Header.Get("Location")).String()
}

// page is an answer as a browser got it, from another goroutine.
type page struct {
	status int
	body   string
	err    error
}

// get fetches u in browser b from the given instance.
func get(b *http.Client, u, instance string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Instance", instance)
	resp, err := b.Do(req)
	if err != nil {
		return page{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body), err: err}
}

var numberPattern = regexp.MustCompile(`data-code="(\d+)"`)

func TestDoubledCallbackAcrossInstances(t *testing.T) {
	c := newCluster(t)
	b, callback := c.signIn()
	stall := make(chan struct{})
	c.idp.set(func(f *fakeIdP) { f.stall = stall })

	// The first instance's exchange is granted, and its answer is slow.
	first := make(chan page, 1)
	go func() { first <- get(b, callback, "1") }()
	for c.idp.count(&c.idp.exchanges) < 1 {
		time.Sleep(time.Millisecond)
	}
	// The doubled callback reaches the second instance, whose exchange
	// the provider refuses: the code is spent.
	second := make(chan page, 1)
	go func() { second <- get(b, callback, "2") }()
	for c.idp.count(&c.idp.exchanges) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(stall)

	p := <-first
	m := numberPattern.FindStringSubmatch(p.body)
	if p.err != nil || p.status != http.StatusOK || m == nil {
		t.Fatalf("first callback: %d, %v: %s", p.status, p.err, p.body)
	}
	p = <-second
	if p.err != nil || p.status != http.StatusOK || numberPattern.MatchString(p.body) ||
		!strings.Contains(p.body, "Number already shown") {
		t.Errorf("doubled callback: %d, %v: %s", p.status, p.err, p.body)
	}

	ctx := context.Background()
	res, err := c.bot.Verify(ctx, jane.Key(), m[1])
	if err != nil || res.Status != flow.StatusVerified ||
		!strings.Contains(string(res.Result), `"accessToken":"access-code-1"`) {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	if _, err := c.bot.Verify(ctx, jane.Key(), m[1]); !botkit.IsCode(err, "already_finished") {
		t.Errorf("second verify: %v; want already_finished", err)
	}
	for _, e := range c.engines {
		e.Work(ctx)
	}
	if evs := c.signal.Events(); len(evs) != 1 || evs[0].Type != flow.EventCompleted {
		t.Errorf("events = %+v; want one completion", evs)
	}
}
