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

func TestParseStat(t *testing.T) {
	line := "4242 (caddy (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 31 0 0 20 0 12 0\n"
	u, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := usage{faults: 1234, user: 2500 * time.Millisecond, sys: 310 * time.Millisecond}
	if u != want {
		t.Errorf("parseStat = %+v, want %+v", u, want)
	}
	if _, err := parseStat("4242 (caddy) S 1 2"); err == nil {
		t.Error("a short line parsed")
	}
	got := want.perRequest(1000, 4*time.Second)
	if got != "2810 µs, busy 70 % (11 % system), 1.2 faults" {
		t.Errorf("perRequest = %q", got)
	}
}

func TestRoundRatios(t *testing.T) {
	got := roundRatios([]float64{90, 120, 100}, []float64{100, 100, 50})
	if want := " (rounds: median 1.20×, 0.90× to 2.00×)"; got != want {
		t.Errorf("roundRatios = %q, want %q", got, want)
	}
	if got := roundRatios(nil, nil); got != "" {
		t.Errorf("roundRatios of no rounds = %q", got)
	}
}

func TestVerifyRows(t *testing.T) {
	p := newReport(options{})
	p.page = 20000
	one := &result{name: "verify, memory", ok: 100, elapsed: 10 * time.Millisecond}
	many := &result{name: "verify, storage", ok: 200, elapsed: 20 * time.Millisecond}
	p.verifies([]*result{one, many}, [][]float64{{10000}, {9000, 11000, 10500}})

	want := []string{"0.500 of page", "0.500 of page (3 rounds: 9000 to 11000 req/s)"}
	if len(p.rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(p.rows), len(want))
	}
	for i, w := range want {
		if p.rows[i].ratio != w {
			t.Errorf("row %d ratio = %q, want %q", i, p.rows[i].ratio, w)
		}
	}
}
