package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A load is one kind of request, sent by concurrent workers for a fixed
// time or until its pool of one-shot requests runs out.
type load struct {
	name string
	// next returns the i-th request, or nil when there are no more.
	next func(i int) *http.Request
	// want is the status a successful answer has.
	want int
}

// A result is what a load run measured.
type result struct {
	name     string
	ok       int
	failed   int
	firstErr string
	elapsed  time.Duration
	latency  []time.Duration // of successful requests, sorted
	// cpu is what the server process used during the run, zero where it
	// cannot be read.
	cpu usage
}

// rate returns successful requests per second.
func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// pct returns the p-th percentile latency, p in [0, 100].
func (r *result) pct(p float64) time.Duration {
	if len(r.latency) == 0 {
		return 0
	}
	i := int(float64(len(r.latency)-1) * p / 100)
	return r.latency[i]
}

// merge adds another run of the same load.
func (r *result) merge(o *result) {
	r.ok += o.ok
	r.failed += o.failed
	r.elapsed += o.elapsed
	r.cpu = r.cpu.add(o.cpu)
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.latency = append(r.latency, o.latency...)
	slices.Sort(r.latency)
}

// newClient returns a keep-alive client for workers concurrent connections
// that follows no redirect.
func newClient(workers int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        workers * 4,
		MaxIdleConnsPerHost: workers,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// run sends l with workers concurrent workers for d, or until l runs out.
func run(ctx context.Context, c *http.Client, l load, workers int, d time.Duration) *result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var seq atomic.Int64
	parts := make([]*result, workers)
	var wg sync.WaitGroup
	began := time.Now()
	for w := range workers {
		parts[w] = &result{}
		wg.Go(func() { work(ctx, c, l, &seq, parts[w]) })
	}
	wg.Wait()

	total := &result{name: l.name}
	for _, p := range parts {
		total.merge(p)
	}
	total.elapsed = time.Since(began)
	return total
}

// work is one worker: it sends requests until ctx ends or l runs out.
func work(ctx context.Context, c *http.Client, l load, seq *atomic.Int64, out *result) {
	for ctx.Err() == nil {
		req := l.next(int(seq.Add(1) - 1))
		if req == nil {
			return
		}
		req = req.WithContext(ctx)
		began := time.Now()
		status, err := send(c, req)
		took := time.Since(began)
		switch {
		case ctx.Err() != nil && err != nil:
			return // cut off by the end of the run
		case err == nil && status == l.want:
			out.ok++
			out.latency = append(out.latency, took)
		default:
			out.failed++
			if out.firstErr == "" {
				out.firstErr = fmt.Sprintf("status %d, error %v", status, err)
			}
		}
	}
}

// send does one request and reads its answer to the end, so that the
// connection is reused.
func send(c *http.Client, req *http.Request) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
