package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRunStopsWhenThePoolRunsOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()

	paths := []string{"/", "/", "/bad", "/", "/"}
	l := load{name: "pool", want: http.StatusOK, next: func(i int) *http.Request {
		if i >= len(paths) {
			return nil
		}
		r, _ := http.NewRequest(http.MethodGet, srv.URL+paths[i], nil)
		return r
	}}
	r := run(context.Background(), newClient(3), l, 3, time.Minute)
	if r.ok != 4 || r.failed != 1 || r.firstErr == "" {
		t.Errorf("ok %d, failed %d, first error %q; want 4, 1 and an error", r.ok, r.failed, r.firstErr)
	}
	if r.elapsed >= time.Minute || r.rate() <= 0 || len(r.latency) != 4 {
		t.Errorf("elapsed %s, rate %f, %d latencies", r.elapsed, r.rate(), len(r.latency))
	}
}

func TestPercentiles(t *testing.T) {
	r := &result{}
	for _, ms := range []int{5, 1, 4, 2, 3} {
		r.merge(&result{ok: 1, elapsed: time.Second,
			latency: []time.Duration{time.Duration(ms) * time.Millisecond}})
	}
	if r.pct(0) != time.Millisecond || r.pct(50) != 3*time.Millisecond ||
		r.pct(100) != 5*time.Millisecond {
		t.Errorf("percentiles of %v: %s %s %s", r.latency, r.pct(0), r.pct(50), r.pct(100))
	}
	if r.rate() != 1 {
		t.Errorf("rate = %f; want 1 per second", r.rate())
	}
}
