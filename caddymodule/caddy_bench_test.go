package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The pass-through benchmarks run a real Caddy configuration in process and
// call its HTTP servers directly: everything Caddy does for a request but
// the connection and the parsing of the request. The page is Caddy's
// respond, the cheapest site there is, so the handler's share is as large as
// it can be, and larger than over a connection.

// passThroughSites are the two sites of the load run, one with bot_handoff
// in front and one without; a third with Caddy's vars handler in front, the
// cheapest handler Caddy has, which shows what any handler of its own route
// costs; and a site proxied to an upstream, with and without bot_handoff,
// the shape of a site the handler sits in front of.
const passThroughSites = `{
	admin off
	auto_https off
	storage file_system %[1]s
	log default {
		output discard
	}
}
http://127.0.0.1:%[3]d {
%[2]s%[9]s}
http://127.0.0.1:%[4]d {
%[9]s}
http://127.0.0.1:%[5]d {
	vars probe 1
%[9]s}
http://127.0.0.1:%[6]d {
%[2]s	reverse_proxy %[8]s
}
http://127.0.0.1:%[7]d {
	reverse_proxy %[8]s
}
`

// handoffSiteBlock is the handler in front of a site of passThroughSites.
const handoffSiteBlock = `	bot_handoff {
		link_key secret 0123456789abcdef0123456789abcdef-bench
		store memory
		site checkout {
			to /checkout
		}
	}
`

// pageRoutes is the site itself: the site flow's task and the page.
const pageRoutes = `	handle /checkout* {
		respond "task" 200
	}
	handle {
		respond "<!doctype html><title>Site</title><p>Hello from the site." 200
	}
`

// sites are the servers of passThroughSites.
type sites struct {
	with, bare, vars, proxiedWith, proxiedBare *caddyhttp.Server
}

// caddyServers loads the sites, the proxied ones in front of a local
// upstream that serves the same page.
func caddyServers(b *testing.B) sites {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<!doctype html><title>Site</title><p>Hello from the site."))
	}))
	b.Cleanup(up.Close)
	var ports [5]int
	for i := range ports {
		ports[i] = freeTCPPort(b)
	}
	file := fmt.Sprintf(passThroughSites, b.TempDir(), handoffSiteBlock,
		ports[0], ports[1], ports[2], ports[3], ports[4], up.URL, pageRoutes)
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warns, err := adapter.Adapt([]byte(file), nil)
	if err != nil || len(warns) > 0 {
		b.Fatalf("adapting: %v %v", err, warns)
	}
	if err := caddy.Load(cfg, true); err != nil {
		b.Fatalf("loading: %v", err)
	}
	b.Cleanup(func() { _ = caddy.Stop() })

	app, err := caddy.ActiveContext().App("http")
	if err != nil {
		b.Fatal(err)
	}
	byPort := map[string]*caddyhttp.Server{}
	for _, srv := range app.(*caddyhttp.App).Servers {
		byPort[srv.Listen[0]] = srv
	}
	at := func(i int) *caddyhttp.Server {
		srv := byPort[fmt.Sprintf(":%d", ports[i])]
		if srv == nil {
			b.Fatalf("no server on port %d: %v", ports[i], byPort)
		}
		return srv
	}
	return sites{with: at(0), bare: at(1), vars: at(2), proxiedWith: at(3), proxiedBare: at(4)}
}

func freeTCPPort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pageRequest is a browser's GET of the site's page.
func pageRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	r.RemoteAddr = "127.0.0.1:50000"
	for k, v := range map[string]string{
		"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
		"Accept":          "text/html,application/xhtml+xml,*/*;q=0.8",
		"Accept-Language": "en-GB,en;q=0.9",
		"Accept-Encoding": "gzip, deflate, br",
		"Cookie":          "session=0123456789abcdef",
	} {
		r.Header.Set(k, v)
	}
	return r
}

// discard is a ResponseWriter that keeps only the status.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func benchServer(b *testing.B, srv *caddyhttp.Server) {
	r := pageRequest()
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		srv.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkCaddyPassThrough serves the page through Caddy's routes with
// bot_handoff in front; BenchmarkCaddyPassThroughBare without it, and
// BenchmarkCaddyPassThroughVars with vars instead. The Proxied pair does
// the same for a proxied site; its time includes the upstream's, which
// runs in the same process. Run them in one command: they load the same
// configuration.
func BenchmarkCaddyPassThrough(b *testing.B)     { benchServer(b, caddyServers(b).with) }
func BenchmarkCaddyPassThroughBare(b *testing.B) { benchServer(b, caddyServers(b).bare) }
func BenchmarkCaddyPassThroughVars(b *testing.B) { benchServer(b, caddyServers(b).vars) }

func BenchmarkCaddyPassThroughProxied(b *testing.B) {
	benchServer(b, caddyServers(b).proxiedWith)
}

func BenchmarkCaddyPassThroughProxiedBare(b *testing.B) {
	benchServer(b, caddyServers(b).proxiedBare)
}
