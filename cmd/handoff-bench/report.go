package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// A row is one line of the table.
type row struct {
	what     string
	rate     float64 // requests per second; 0 for a latency row
	p50, p99 time.Duration
	ratio    string
	cpu      string // the server's CPU per request
}

// report gathers the rows of a run.
type report struct {
	o     options
	rows  []row
	rates map[string]float64
	// page is the pass-through rate with the handler, the base of ratios.
	page float64
	// proxy is oauth2-proxy's start rate, 0 if not measured.
	proxy float64
}

func newReport(o options) *report { return &report{o: o, rates: map[string]float64{}} }

func (p *report) add(r *result, ratio string) {
	p.rates[r.name] = r.rate()
	p.rows = append(p.rows, row{what: r.name, rate: r.rate(), p50: r.pct(50), p99: r.pct(99),
		ratio: ratio, cpu: r.cpu.perRequest(r.ok, r.elapsed)})
}

func (p *report) startRate(name string) float64 { return p.rates[name] }

// passThrough adds the page rates, the base of the later ratios, and the
// ratio of the rounds' median, which a burst of load from outside the run
// moves least.
func (p *report) passThrough(bare, with *result, ratios []float64) {
	p.page = with.rate()
	p.pair(bare, with, ratios)
}

// pair adds a site without and with the handler, with the median and range
// of the rounds' ratios.
func (p *report) pair(bare, with *result, ratios []float64) {
	slices.Sort(ratios)
	p.add(bare, "1")
	p.add(with, fmt.Sprintf("%.3f of bare (median of %d rounds; %.3f to %.3f)",
		ratios[len(ratios)/2], len(ratios), ratios[0], ratios[len(ratios)-1]))
}

// starts adds the start rates of one number of connections: oauth2-proxy's
// last, if measured, and the stores' against it, as the ratio of the whole
// runs and the median and range of the rounds' ratios. rates holds each
// load's rate in every round.
func (p *report) starts(rs []*result, rates [][]float64) {
	if len(rs) > 2 {
		p.proxy = rs[2].rate()
		p.add(rs[2], fmt.Sprintf("%.3f of page", p.proxy/p.page))
	}
	for i, r := range rs[:2] {
		ratio := fmt.Sprintf("%.3f of page", r.rate()/p.page)
		if p.proxy > 0 {
			ratio += fmt.Sprintf("; %.2f× oauth2-proxy", r.rate()/p.proxy)
			ratio += roundRatios(rates[i], rates[2])
		}
		p.add(r, ratio)
	}
}

// roundRatios describes the ratios of rates to base round by round: their
// median, which a burst of load from outside the run moves least, and
// their range.
func roundRatios(rates, base []float64) string {
	var ratios []float64
	for i := range min(len(rates), len(base)) {
		ratios = append(ratios, rates[i]/base[i])
	}
	if len(ratios) == 0 {
		return ""
	}
	slices.Sort(ratios)
	return fmt.Sprintf(" (rounds: median %.2f×, %.2f× to %.2f×)",
		ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
}

// verifies adds the verify rates of one number of connections, with the
// range of the rounds' rates, which rates holds by store, then round.
func (p *report) verifies(rs []*result, rates [][]float64) {
	for i, r := range rs {
		ratio := fmt.Sprintf("%.3f of page", r.rate()/p.page)
		if len(rates[i]) > 1 {
			ratio += fmt.Sprintf(" (%d rounds: %.0f to %.0f req/s)",
				len(rates[i]), slices.Min(rates[i]), slices.Max(rates[i]))
		}
		p.add(r, ratio)
	}
}

func (p *report) callback(store string, t *callbackTimes) {
	p.rows = append(p.rows, row{
		what: "OAuth callback, added by the handler, " + store,
		p50:  pctOf(t.added, 50), p99: pctOf(t.added, 99),
		ratio: fmt.Sprintf("provider's own time p50 %s", fmtDur(pctOf(t.provider, 50))),
	})
}

// print writes the table in Markdown.
func (p *report) print(w io.Writer) {
	cpus := fmt.Sprintf("%d CPUs shared by servers and load", runtime.NumCPU())
	if p.o.serverCPUs != "" {
		cpus = fmt.Sprintf("servers on CPUs %s, load on %d others", p.o.serverCPUs, runtime.NumCPU())
	}
	workers := fmt.Sprintf("%d connections", p.o.workers)
	if p.o.manyWorkers > 0 && p.o.manyWorkers != p.o.workers {
		workers += fmt.Sprintf(" (%d where marked)", p.o.manyWorkers)
	}
	fmt.Fprintf(w, "%s, %s, %d rounds of %s per target, %d sign-ins per store\n\n",
		cpus, workers, p.o.rounds, p.o.duration, p.o.samples)
	fmt.Fprintln(w, "| measurement | req/s | p50 | p99 | ratio | server CPU per request |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	for _, r := range p.rows {
		rate := "–"
		if r.rate > 0 {
			rate = fmt.Sprintf("%.0f", r.rate)
		}
		cpu := r.cpu
		if cpu == "" {
			cpu = "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n",
			r.what, rate, fmtDur(r.p50), fmtDur(r.p99), r.ratio, cpu)
	}
}

// fmtDur writes a latency in milliseconds with two decimals.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
