package flow_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/oauth"
)

// The benchmarks here run the engine in process, without a network, on the
// memory store with rate limits off: pass-through, link start, verify, and
// the memory a pending flow takes. cmd/handoff-bench measures the same
// through a real Caddy.

const benchOrigin = "https://example.com"

// benchEnv is an engine with a site flow and an oauth flow, and the means to
// sign links for it.
type benchEnv struct {
	engine *flow.Engine
	store  *memstore.Store
	signer flow.Signer
	now    time.Time
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	key, _ := flow.SecretKey("", testSecret)
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	kr, _ := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	idp, err := oauth.New(oauth.Config{
		AuthURL: "https://idp.example.com/authorize", TokenURL: "https://idp.example.com/token",
		ClientID: "client", ClientSecret: "secret", Scopes: []string{"openid", "profile", "email"},
	})
	if err != nil {
		b.Fatal(err)
	}
	st := memstore.New(clock)
	off := flow.Rate{N: -1}
	e, err := flow.New(flow.Config{
		Audience: benchOrigin + "/handoff", Verifier: v, Store: st, Keys: kr, Now: clock,
		Flows: map[string]flow.FlowConfig{
			"checkout": {Provider: &flow.Site{Path: "/checkout"}},
			"idp":      {Provider: idp},
		},
		Limits: flow.Limits{StartPerIP: off, StartPerFlow: off, VerifyPerIP: off},
	})
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := flow.SecretSigner("", testSecret)
	return &benchEnv{engine: e, store: st, signer: signer, now: now}
}

// benchRef is the reference of user i, with IDs as long as Teams makes them.
func benchRef(i int) flow.Ref {
	return flow.Ref{
		ChannelID:  "msteams",
		ServiceURL: "https://smba.trafficmanager.net/emea/",
		Conversation: flow.Conversation{ID: fmt.Sprintf("a:1Xj7Lk3bench%032d", i),
			TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		User: flow.Account{ID: fmt.Sprintf("29:1Gh5bench%040d", i), Name: "Jane Doe"},
	}
}

// link signs a fresh link for flow name and user i.
func (be *benchEnv) link(b *testing.B, name string, i int) string {
	b.Helper()
	var data map[string]any
	if name == "idp" {
		data = map[string]any{"loginHint": "jane.doe@example.com"}
	}
	tok, err := be.signer.SignLink(flow.Link{Flow: name, Ref: benchRef(i),
		Audience: benchOrigin + "/handoff", Now: be.now, TTL: 10 * time.Minute, Data: data})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// startRequest is the continue form's POST for a link.
func startRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, benchOrigin+"/handoff/start",
		strings.NewReader(url.Values{"t": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", benchOrigin)
	return r
}

// benchSite is the site behind the engine: /checkout/done completes the
// flow; anything else is a small page.
func benchSite(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path == "/checkout/done" {
		w.Header().Set(flow.HeaderComplete, `{"orderId":"42"}`)
	}
	_, err := io.WriteString(w, "ok")
	return err
}

// nopWriter is a ResponseWriter that keeps nothing, so that the benchmarks
// measure the engine rather than a recorder.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

// browserRequest is a GET as a browser sends it, outside every handoff path.
func browserRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, benchOrigin+"/assets/app.css?v=3", nil)
	for k, v := range map[string]string{
		"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",
		"Accept":          "text/css,*/*;q=0.1",
		"Accept-Encoding": "gzip, deflate, br, zstd",
		"Accept-Language": "en-GB,en;q=0.9,de;q=0.8",
		"Cookie":          "session=abc123; theme=dark",
		"Referer":         benchOrigin + "/",
		"Sec-Fetch-Dest":  "style",
		"Sec-Fetch-Mode":  "no-cors",
		"Sec-Fetch-Site":  "same-origin",
	} {
		r.Header.Set(k, v)
	}
	return r
}

// BenchmarkPassThrough is a request outside the prefix and the task paths:
// the cost the handler adds to every other request of the site. Compare
// with BenchmarkPassThroughBare, the site alone.
func BenchmarkPassThrough(b *testing.B) {
	e := newBenchEnv(b).engine
	r, w := browserRequest(), &nopWriter{}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ServeHTTP(w, r, benchSite); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassThroughBare is the site alone, the baseline of
// BenchmarkPassThrough.
func BenchmarkPassThroughBare(b *testing.B) {
	r, w := browserRequest(), &nopWriter{}
	b.ReportAllocs()
	for b.Loop() {
		if err := benchSite(w, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStart posts fresh links of an oauth flow: token check, flow
// creation, provider state, redirect. Links are signed before the timer.
func BenchmarkStart(b *testing.B) {
	be := newBenchEnv(b)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = startRequest(be.link(b, "idp", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := &nopWriter{}
		_ = be.engine.ServeHTTP(w, reqs[i], benchSite)
		if w.code != http.StatusSeeOther {
			b.Fatalf("start: %d", w.code)
		}
	}
}

var benchCode = regexp.MustCompile(`data-code="(\d+)"`)

// completeSite walks a site flow for user i and returns its number.
func (be *benchEnv) completeSite(b *testing.B, i int) string {
	b.Helper()
	w := httptest.NewRecorder()
	_ = be.engine.ServeHTTP(w, startRequest(be.link(b, "checkout", i)), benchSite)
	if w.Code != http.StatusSeeOther {
		b.Fatalf("start: %d %s", w.Code, w.Body)
	}
	done := httptest.NewRequest(http.MethodGet, benchOrigin+"/checkout/done", nil)
	for _, c := range w.Result().Cookies() {
		done.AddCookie(c)
	}
	w = httptest.NewRecorder()
	_ = be.engine.ServeHTTP(w, done, benchSite)
	m := benchCode.FindStringSubmatch(w.Body.String())
	if m == nil {
		b.Fatalf("no number: %d %s", w.Code, w.Body)
	}
	return m[1]
}

// BenchmarkVerify releases the results of completed flows with the right
// numbers. The flows are completed before the timer.
func BenchmarkVerify(b *testing.B) {
	be := newBenchEnv(b)
	bodies := make([]string, b.N)
	for i := range bodies {
		code := be.completeSite(b, i)
		k := benchRef(i).Key()
		bodies[i] = fmt.Sprintf(`{"channelId":%q,"conversationId":%q,"userId":%q,"code":%q}`,
			k.ChannelID, k.ConversationID, k.UserID, code)
	}
	api, err := be.signer.SignAPI(flow.APIToken{Audience: benchOrigin + "/handoff", Now: be.now})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := httptest.NewRequest(http.MethodPost, benchOrigin+"/handoff/api/verify",
			strings.NewReader(bodies[i]))
		r.Header.Set("Authorization", "Bearer "+api)
		r.Header.Set("Content-Type", "application/json")
		w := &nopWriter{}
		be.engine.ServeHTTP(w, r, benchSite)
		if w.code != http.StatusOK {
			b.Fatalf("verify: %d", w.code)
		}
	}
}

// BenchmarkPendingFlowMemory opens b.N oauth flows and reports the heap
// they hold in the memory store, per flow: run it with -benchtime 10000x,
// 100000x and 1000000x. The time per op includes signing each link.
func BenchmarkPendingFlowMemory(b *testing.B) {
	be := newBenchEnv(b)
	before := liveHeap()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				w := &nopWriter{}
				_ = be.engine.ServeHTTP(w, startRequest(be.link(b, "idp", i)), benchSite)
				if w.code != http.StatusSeeOther {
					b.Errorf("start: %d", w.code)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := be.store.Len(); n != 2*b.N {
		b.Fatalf("store holds %d entries; want %d", n, 2*b.N)
	}
	b.ReportMetric(float64(liveHeap()-before)/float64(b.N), "B/flow")
	runtime.KeepAlive(be)
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
