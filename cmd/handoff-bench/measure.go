package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// warmup is how long each target is warmed before its timed runs: it opens
// the connections and makes the handler discover the provider.
const warmup = time.Second

// measure runs l against s with workers connections for the run's
// duration, with the CPU s used, and fails on errors.
func (e *env) measure(ctx context.Context, l load, s *server, workers int) (*result, error) {
	before, ok := s.usage()
	r := run(ctx, e.client, l, workers, e.o.duration)
	if after, ok2 := s.usage(); ok && ok2 {
		r.cpu = after.sub(before)
	}
	if r.failed > 0 {
		return nil, fmt.Errorf("%s: %d of %d requests failed, first: %s",
			l.name, r.failed, r.ok+r.failed, r.firstErr)
	}
	progress("%-40s %8.0f req/s  p50 %-8s p99 %-8s CPU %s", l.name, r.rate(),
		r.pct(50).Round(time.Microsecond), r.pct(99).Round(time.Microsecond),
		r.cpu.perRequest(r.ok, r.elapsed))
	return r, nil
}

// levels are the numbers of connections the stores' writes are measured
// with: -workers, and -many-workers if set. A store that waits for the
// disk before it answers serves at most as many requests at once as there
// are connections, so a few connections measure the disk's latency, and
// many measure what the store can do.
func (e *env) levels() []int {
	if e.o.manyWorkers > 0 && e.o.manyWorkers != e.o.workers {
		return []int{e.o.workers, e.o.manyWorkers}
	}
	return []int{e.o.workers}
}

// named returns a measurement's name at a number of connections: as it is
// for -workers, marked for any other.
func (e *env) named(name string, workers int) string {
	if workers == e.o.workers {
		return name
	}
	return fmt.Sprintf("%s, %d connections", name, workers)
}

// passThrough measures the site without and with the handler, both in one
// Caddy process: first a page Caddy answers itself, the cheapest site there
// is, then a site Caddy proxies to, which runs on the same CPUs.
func (e *env) passThrough(ctx context.Context) error {
	bare, with, ratios, err := e.alternate(ctx,
		pageLoad("page, bare site", e.bare), pageLoad("page, bot_handoff", e.memory.url))
	if err != nil {
		return err
	}
	e.rep.passThrough(bare, with, ratios)

	bare, with, ratios, err = e.alternate(ctx,
		pageLoad("proxied page, bare site", e.proxiedBare),
		pageLoad("proxied page, bot_handoff", e.proxiedWith))
	if err != nil {
		return err
	}
	e.rep.pair(bare, with, ratios)
	return nil
}

// alternate runs a and b on the memory Caddy, A B B A in every round, so
// that drift hits both alike. It returns their sums and the rounds' ratios
// of b's rate to a's.
func (e *env) alternate(ctx context.Context, a, b load) (sumA, sumB *result,
	ratios []float64, err error) {
	run(ctx, e.client, a, e.o.workers, warmup)
	run(ctx, e.client, b, e.o.workers, warmup)

	sumA, sumB = &result{name: a.name}, &result{name: b.name}
	for range e.o.rounds {
		roundA, roundB := &result{}, &result{}
		for _, l := range []load{a, b, b, a} {
			r, err := e.measure(ctx, l, e.memory, e.o.workers)
			if err != nil {
				return nil, nil, nil, err
			}
			sum, round := sumA, roundA
			if l.name == b.name {
				sum, round = sumB, roundB
			}
			sum.merge(r)
			round.merge(r)
		}
		ratios = append(ratios, roundB.rate()/roundA.rate())
	}
	return sumA, sumB, ratios, nil
}

// starts measures link start on both stores and oauth2-proxy's start, in
// turn in every round, at every level of connections.
func (e *env) starts(ctx context.Context) error {
	for _, workers := range e.levels() {
		if err := e.startsWith(ctx, workers); err != nil {
			return err
		}
	}
	return nil
}

// startsWith runs the rounds of starts with workers connections, and adds
// their rows.
func (e *env) startsWith(ctx context.Context, workers int) error {
	loads := []func() (load, error){
		e.startLoad(e.named("link start, memory", workers), e.memory),
		e.startLoad(e.named("link start, storage", workers), e.storage),
	}
	servers := []*server{e.memory, e.storage}
	if e.proxy != nil {
		name := e.named("oauth2-proxy /oauth2/start", workers)
		loads = append(loads, func() (load, error) { return oauth2ProxyLoad(name, e.proxy.url), nil })
		servers = append(servers, e.proxy)
	}

	sums := make([]*result, len(loads))
	rates := make([][]float64, len(loads)) // by load, then round
	for round := -1; round < e.o.rounds; round++ {
		for i, next := range loads {
			l, err := next()
			if err != nil {
				return err
			}
			if round < 0 {
				run(ctx, e.client, l, workers, warmup)
				continue
			}
			last := round == e.o.rounds-1 && workers == e.o.workers
			profiled := e.profileDuring(ctx, last && strings.HasSuffix(l.name, e.o.profiled))
			r, err := e.measure(ctx, l, servers[i], workers)
			if err := errors.Join(err, profiled()); err != nil {
				return err
			}
			addRound(sums, rates, i, r)
		}
	}
	e.rep.starts(sums, rates)
	return nil
}

// profileDuring starts a CPU profile of the profiled Caddy for the length of
// a run, if on and the run was asked to be profiled. The returned function
// waits for the profile and writes it to the -profile file.
func (e *env) profileDuring(ctx context.Context, on bool) func() error {
	if !on || e.admin == "" {
		return func() error { return nil }
	}
	secs := max(1, int(e.o.duration.Seconds()))
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.admin, secs)
	done := make(chan error, 1)
	go func() { done <- fetchTo(ctx, url, e.o.profile) }()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
		progress("CPU profile of the %s store's Caddy written to %s", e.o.profiled, e.o.profile)
		return nil
	}
}

// fetchTo writes the body of a GET of url to the file path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// startsPerSecond bounds the rate a start run can reach, to size its pool
// of one-shot links; a run that uses them up ends early, and its rate
// holds.
const startsPerSecond = 16000

// startLoad returns a maker of start loads with fresh links for an oauth
// flow on s.
func (e *env) startLoad(name string, s *server) func() (load, error) {
	return func() (load, error) {
		n := int(startsPerSecond * e.o.duration.Seconds())
		bodies, _, err := signLinks(s.url+"/handoff", "idp", n)
		if err != nil {
			return load{}, err
		}
		return startLoad(name, s.url, bodies), nil
	}
}

// verifyRounds bounds the rounds of verify calls: each round first
// completes its own flows, which takes longer than the round.
const verifyRounds = 3

// verifies measures the verify API on both stores, each on flows completed
// before each timed run, in rounds, at every level of connections.
func (e *env) verifies(ctx context.Context) error {
	stores := []*server{e.memory, e.storage}
	for _, workers := range e.levels() {
		sums := make([]*result, len(stores))
		rates := make([][]float64, len(stores)) // by store, then round
		for range min(e.o.rounds, verifyRounds) {
			for i, s := range stores {
				r, err := e.verifyRound(ctx, s, workers)
				if err != nil {
					return err
				}
				addRound(sums, rates, i, r)
			}
		}
		e.rep.verifies(sums, rates)
	}
	return nil
}

// addRound adds a round's result r of target i to its sum, and its rate to
// the target's rates.
func addRound(sums []*result, rates [][]float64, i int, r *result) {
	if sums[i] == nil {
		sums[i] = &result{name: r.name}
	}
	sums[i].merge(r)
	rates[i] = append(rates[i], r.rate())
}

// verifyRound completes flows on s, then verifies them for one run.
func (e *env) verifyRound(ctx context.Context, s *server, workers int) (*result, error) {
	name := e.named("verify, "+s.name, workers)
	n := e.verifyPool(e.named("link start, "+s.name, workers))
	progress("completing %d site flows on %s", n, s.name)
	done, err := completeSites(ctx, e.client, s.url, n, e.o.workers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	l, err := verifyLoad(name, s.url+"/handoff", done)
	if err != nil {
		return nil, err
	}
	return e.measure(ctx, l, s, workers)
}

// verifyPool sizes the completed flows for a verify run: twice what the
// start run named starts would use up in a run, within bounds.
func (e *env) verifyPool(starts string) int {
	rate := e.rep.startRate(starts)
	n := int(2 * rate * e.o.duration.Seconds())
	return min(max(n, 2000), 40000)
}

// callbacks times OAuth sign-ins one by one on both stores.
func (e *env) callbacks(ctx context.Context) error {
	for _, s := range []*server{e.memory, e.storage} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t, err := signIns(e.client, e.idp, s.url, e.o.samples)
		if err != nil {
			return fmt.Errorf("sign-ins on %s: %w", s.name, err)
		}
		progress("callback, %-18s added p50 %s p99 %s", s.name,
			pctOf(t.added, 50).Round(time.Microsecond), pctOf(t.added, 99).Round(time.Microsecond))
		e.rep.callback(s.name, t)
	}
	return nil
}

// progress reports a step on stderr, so that stdout holds only the table.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
