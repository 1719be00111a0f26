package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Metric names share this namespace and subsystem: caddy_bot_handoff_*.
const (
	metricsNS  = "caddy"
	metricsSub = "bot_handoff"
)

// metrics is the engine's Observer on Caddy's metrics registry. Its labels
// are bounded: flow names and kinds come from the configuration, statuses,
// outcomes, steps and signal kinds from fixed sets; no ID is ever a label.
type metrics struct {
	flows      *prometheus.CounterVec
	verifies   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	durations  *prometheus.HistogramVec
}

// newMetrics registers the handler's metrics, or takes those another handler
// of the same configuration registered.
func newMetrics(ctx caddy.Context) flow.Observer {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	return &metrics{
		flows: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "flows_total",
			Help: "Flows reaching a status, by flow name, kind and status.",
		}, []string{"flow", "kind", "status"})),
		verifies: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "verify_attempts_total",
			Help: "Calls of the verify API, by flow name and outcome.",
		}, []string{"flow", "outcome"})),
		deliveries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "deliveries_total",
			Help: "Signal delivery attempts, by signal kind and outcome (delivered, retried, failed).",
		}, []string{"signal", "outcome"})),
		durations: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "step_duration_seconds",
			Help:    "Duration of link starts, returns from providers, webhooks and provider calls.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"step", "flow"})),
	}
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}

func (m *metrics) FlowStatus(name, kind string, status flow.Status) {
	m.flows.WithLabelValues(name, kind, string(status)).Inc()
}

func (m *metrics) VerifyAttempt(name, outcome string) {
	m.verifies.WithLabelValues(name, outcome).Inc()
}

func (m *metrics) Delivery(signal, outcome string) {
	m.deliveries.WithLabelValues(signal, outcome).Inc()
}

func (m *metrics) Duration(step, name string, d time.Duration) {
	m.durations.WithLabelValues(step, name).Observe(d.Seconds())
}

// registerOutbox adds gauges reading the outbox of the engine at scrape
// time, labelled with the handler's namespace (one per configured handler).
// One scrape reads the store once for all of them.
func registerOutbox(ctx caddy.Context, e *flow.Engine, namespace string) {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	labels := prometheus.Labels{"handler": namespace}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNS, metricsSub, name), help, nil, labels)
	}
	c := &outboxCollector{
		engine:  e,
		pending: desc("outbox_pending", "Signal deliveries waiting in the outbox."),
		overdue: desc("outbox_overdue_seconds",
			"How long the most overdue delivery attempt has been due."),
		dead: desc("outbox_dead", "Signal deliveries given up and kept for the operator."),
		up:   desc("store_up", "Whether the handler's store answers (1) or not (0)."),
	}
	_ = reg.Register(c) // a second handler on the same namespace reads the same store
}

// outboxCollector reports a handler's outbox and store health.
type outboxCollector struct {
	engine                     *flow.Engine
	pending, overdue, dead, up *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.overdue
	ch <- c.dead
	ch <- c.up
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h := c.engine.Health(ctx)

	up := 0.0
	if h.Store == "ok" {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(h.Outbox.Pending))
	ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, h.Outbox.OverdueSeconds)
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(h.Outbox.Dead))
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
