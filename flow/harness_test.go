package flow_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/flowtest"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// recorder keeps the events delivered, and returns them in the order they
// can happen within a flow.
type recorder struct{ flowtest.Recorder }

// Events returns the events delivered, in the order they were created.
func (r *recorder) Events() []*flow.Event {
	out := r.Recorder.Events()
	slices.SortStableFunc(out, func(a, b *flow.Event) int {
		return strings.Compare(order[a.Type], order[b.Type])
	})
	return out
}

// order sorts events of one flow in the order they can happen.
var order = map[string]string{flow.EventCompleted: "1", flow.EventFailed: "2", flow.EventExpired: "3"}

// env is an engine behind an httptest server, with a site behind it.
type env struct {
	t      *testing.T
	clock  *storetest.Clock
	store  *memstore.Store
	engine *flow.Engine
	server *httptest.Server
	signal *recorder
	bot    *botkit.Client
}

type envOption func(*flow.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	e := &env{t: t, clock: c, store: memstore.New(c.Now), signal: &recorder{}}
	e.engine, e.server = e.instance(opts...)

	signer, _ := flow.SecretSigner("", testSecret)
	e.bot = &botkit.Client{URL: e.server.URL + "/handoff", Signer: signer, Now: c.Now}
	return e
}

// instance starts an engine on the env's store, clock and keys, behind a
// server of its own: another instance of a cluster sharing the store.
func (e *env) instance(opts ...envOption) (*flow.Engine, *httptest.Server) {
	t := e.t
	t.Helper()
	key, err := flow.SecretKey("", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := flow.Config{
		Verifier: v, Store: e.store, Keys: kr, Now: e.clock.Now,
		Flows: map[string]flow.FlowConfig{
			"checkout": {Provider: &flow.Site{Path: "/checkout"}, TTL: 30 * time.Minute},
		},
		Signals: []flow.Signal{e.signal},
	}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := flow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := eng.ServeHTTP(w, r, site); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	t.Cleanup(srv.Close)
	return eng, srv
}

// site is the site behind the handler: /checkout shows the headers it got;
// /checkout/done completes the flow; /checkout/fail fails it.
func site(w http.ResponseWriter, r *http.Request) error {
	switch r.URL.Path {
	case "/checkout/done":
		w.Header().Set("Handoff-Complete", `{"orderId":"42","flowSeen":"`+r.Header.Get("Handoff-Flow-Id")+`"}`)
		_, _ = io.WriteString(w, "site body that must not reach the browser")
	case "/checkout/fail":
		w.Header().Set("Handoff-Complete", "failed:out_of_stock")
	default:
		w.Header().Set("Content-Type", "application/json")
		hdr := map[string]string{}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "handoff-") {
				hdr[k] = strings.Join(v, ",")
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": hdr})
	}
	return nil
}

var ref = flow.Ref{
	ChannelID: "msteams", ServiceURL: "https://smba.example.com/",
	Conversation: flow.Conversation{ID: "conv-1"}, User: flow.Account{ID: "user-1"},
}

func (e *env) key() flow.Key { return ref.Key() }

// link signs a link for the checkout flow.
func (e *env) link(opts ...func(*flow.Link)) string {
	e.t.Helper()
	return e.linkFor(e.server.URL+"/handoff", opts...)
}

// linkFor signs a link for the checkout flow for audience aud.
func (e *env) linkFor(aud string, opts ...func(*flow.Link)) string {
	e.t.Helper()
	l := flow.Link{Flow: "checkout", Ref: ref, Audience: aud,
		Now: e.clock.Now(), TTL: 10 * time.Minute, Data: map[string]any{"sku": "tea"}}
	for _, o := range opts {
		o(&l)
	}
	signer, _ := flow.SecretSigner("", testSecret)
	tok, err := signer.SignLink(l)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// browser is an HTTP client with its own cookies that does not follow
// redirects.
func (e *env) browser() *http.Client { return flowtest.Browser() }

// open posts the continue form for a link token.
func (e *env) open(b *http.Client, token string) *http.Response {
	e.t.Helper()
	resp, err := flowtest.ContinueToken(b, e.server.URL+"/handoff/start", token)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) get(b *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	resp, err := b.Get(e.server.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

var codePattern = regexp.MustCompile(`data-code="(\d+)"`)

// finishSite walks the site flow in browser b and returns the number shown.
func (e *env) finishSite(b *http.Client, token string) string {
	e.t.Helper()
	resp := e.open(b, token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("start: got %d, want 303", resp.StatusCode)
	}
	resp, body := e.get(b, "/checkout/done")
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("done: got %d, want 200: %s", resp.StatusCode, body)
	}
	m := codePattern.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no number on the finish page: %s", body)
	}
	return m[1]
}

// work runs the engine's worker once over everything due.
func (e *env) work() { e.engine.Work(context.Background()) }
