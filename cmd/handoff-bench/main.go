// Command handoff-bench measures caddy-bothandoff through a real Caddy on
// loopback, as ratios within one run: pass-through against the same site
// without the handler, served by the same Caddy process on another port,
// link start and verify against the pass-through rate, link start against
// oauth2-proxy's /oauth2/start, and the latency the handler adds to an
// OAuth callback. It prints a Markdown table, with the CPU time the server
// process used per request where /proc gives it.
//
// Usage:
//
//	handoff-bench -caddy bin/caddy [-oauth2-proxy PATH] [-duration 2s]
//	              [-rounds 7] [-workers 16] [-many-workers 64] [-samples 300]
//	              [-server-cpus LIST]
//	              [-profile FILE [-profile-store memory|storage]]
//
// With -server-cpus, the servers run on those CPUs only; run the command
// itself on the others (taskset --cpu-list 0 handoff-bench ...) so that the
// load generator does not take CPU time from the servers it measures.
// With -many-workers, link starts and verify are measured a second time
// with that many connections: a store that makes each write durable before
// it answers serves only as many requests at once as there are connections,
// so with few of them its rate is the disk's sync latency.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"
)

type options struct {
	caddy       string
	oauth2Proxy string
	duration    time.Duration
	rounds      int
	workers     int
	manyWorkers int // a second number of connections for starts and verify
	samples     int
	serverCPUs  string
	profile     string
	profiled    string // the store whose Caddy -profile profiles
}

func main() {
	var o options
	flag.StringVar(&o.caddy, "caddy", "", "Caddy binary with the bot_handoff module (required)")
	flag.StringVar(&o.oauth2Proxy, "oauth2-proxy", "", "oauth2-proxy binary to compare with")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "length of each timed run")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds of alternating runs")
	flag.IntVar(&o.workers, "workers", 16, "concurrent keep-alive connections")
	flag.IntVar(&o.manyWorkers, "many-workers", 0,
		"also measure link starts and verify with this many connections (default: off)")
	flag.IntVar(&o.samples, "samples", 300, "OAuth sign-ins timed one by one, per store")
	flag.StringVar(&o.serverCPUs, "server-cpus", "",
		"CPUs for Caddy and oauth2-proxy, as taskset --cpu-list takes them (default: any)")
	flag.StringVar(&o.profile, "profile", "",
		"write a CPU profile of a Caddy during its last link start run here")
	flag.StringVar(&o.profiled, "profile-store", "memory",
		"the store of the Caddy to profile: memory or storage")
	flag.Parse()
	if o.caddy == "" || (o.profiled != "memory" && o.profiled != "storage") {
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "handoff-bench:", err)
		os.Exit(1)
	}
}

// env is what one benchmark run started.
type env struct {
	o      options
	client *http.Client
	idp    *idp
	bare   string // the site without the handler, on the memory Caddy
	// proxiedBare and proxiedWith proxy to a site of the memory Caddy, the
	// second with the handler in front: a site behind Caddy, all of it on
	// the servers' CPUs.
	proxiedBare, proxiedWith string
	admin                    string // the profiled Caddy's admin endpoint
	memory                   *server
	storage                  *server
	proxy                    *server // nil without oauth2-proxy
	rep                      *report
}

func benchmark(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "handoff-bench-")
	if err != nil {
		return fmt.Errorf("creating work directory: %w", err)
	}
	defer os.RemoveAll(dir)

	e := &env{o: o, client: newClient(max(o.workers, o.manyWorkers)), rep: newReport(o)}
	if e.idp, err = startIdP(); err != nil {
		return err
	}
	defer e.idp.stop()
	up := httptest.NewServer(http.HandlerFunc(upstream))
	defer up.Close()
	defer e.stopServers() // also those started before one failed
	if err := e.startServers(dir, up.URL); err != nil {
		return err
	}

	for _, step := range []func(context.Context) error{
		e.passThrough, e.starts, e.verifies, e.callbacks,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	e.rep.print(os.Stdout)
	return nil
}

// upstream is the site's task behind Caddy: /checkout/done completes the
// site flow.
func upstream(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/checkout/done" {
		w.Header().Set("Handoff-Complete", `{"orderId":"42"}`)
	}
	_, _ = w.Write([]byte("task page"))
}

func (e *env) startServers(dir, up string) error {
	env := []string{"HANDOFF_LINK_SECRET=" + linkSecret, "IDP_CLIENT_SECRET=" + idpClientSecret}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	barePort, origin, proxiedBare, proxiedWith := ports[0], ports[1], ports[2], ports[3]
	e.bare = fmt.Sprintf("http://127.0.0.1:%d", barePort)
	e.proxiedBare = fmt.Sprintf("http://127.0.0.1:%d", proxiedBare)
	e.proxiedWith = fmt.Sprintf("http://127.0.0.1:%d", proxiedWith)
	for _, s := range []struct {
		store string
		dst   **server
	}{{"memory", &e.memory}, {"storage", &e.storage}} {
		h := handoffBlock(s.store, e.idp.issuer())
		site := siteBlock(h, up)
		if s.store == "memory" {
			site = withBlocks(site, siteBlock("", up)(barePort),
				originBlock(origin),
				proxiedBlock("", proxiedBare, origin),
				proxiedBlock(minimalHandoff, proxiedWith, origin))
		}
		admin := "off"
		if s.store == e.o.profiled && e.o.profile != "" {
			if admin, err = e.adminAddress(); err != nil {
				return err
			}
		}
		if *s.dst, err = startCaddy(e.o, dir, s.store, admin, env, site); err != nil {
			return err
		}
	}
	if e.o.oauth2Proxy != "" {
		e.proxy, err = startOAuth2Proxy(e.o, dir, e.idp.issuer())
	}
	return err
}

// adminAddress picks the profiled Caddy's admin address.
func (e *env) adminAddress() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	e.admin = fmt.Sprintf("127.0.0.1:%d", port)
	return e.admin, nil
}

func (e *env) stopServers() {
	for _, s := range []*server{e.memory, e.storage, e.proxy} {
		if s != nil {
			s.stop()
		}
	}
}

// withBlocks adds site blocks to a Caddyfile.
func withBlocks(site func(int) string, blocks ...string) func(int) string {
	return func(port int) string { return site(port) + strings.Join(blocks, "") }
}

// sitePage is the page every site answers its root with.
const sitePage = `"<!doctype html><title>Site</title><p>Hello from the site." 200`

// originBlock is a site behind Caddy: the page, on its own port.
func originBlock(port int) string {
	return fmt.Sprintf("http://127.0.0.1:%d {\n\trespond %s\n}\n", port, sitePage)
}

// proxiedBlock serves the site on origin through reverse_proxy, with the
// bot_handoff block handoff in front, or none.
func proxiedBlock(handoff string, port, origin int) string {
	return fmt.Sprintf("http://127.0.0.1:%d {\n%s\treverse_proxy 127.0.0.1:%d\n}\n",
		port, handoff, origin)
}

// minimalHandoff is the handler as a site of its own needs it: a link key
// and a site flow.
const minimalHandoff = `	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		site checkout {
			to /checkout
		}
	}
`

// siteBlock is the site every Caddy serves: a small static page, and the
// site flow's task path proxied to a local upstream. handoff is the
// bot_handoff block, or empty for the bare site.
func siteBlock(handoff, up string) func(int) string {
	return func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
%s	handle /checkout* {
		reverse_proxy %s
	}
	handle {
		respond %s
	}
}
`, port, handoff, up, sitePage)
	}
}

// handoffBlock configures the handler with a site flow and an oauth flow
// on the mock provider, with every rate limit off: the load generator
// opens thousands of links per second from one IP.
func handoffBlock(store, issuer string) string {
	return fmt.Sprintf(`	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store %s
		rate_limit {
			start_per_ip off
			start_per_flow off
			verify_per_ip off
		}
		site checkout {
			to /checkout
		}
		oauth idp {
			issuer %s
			client_id %s
			client_secret {env.IDP_CLIENT_SECRET}
		}
	}
`, store, issuer, idpClientID)
}
