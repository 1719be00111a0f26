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
func registerOutbox(ctx caddy.Context, e *flow.Engine, namespace string) {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	labels := prometheus.Labels{"handler": namespace}
	health := func() flow.Health {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return e.Health(c)
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "outbox_pending",
			Help: "Signal deliveries waiting in the outbox.", ConstLabels: labels,
		}, func() float64 { return float64(health().Outbox.Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "outbox_overdue_seconds",
			Help:        "How long the most overdue delivery attempt has been due.",
			ConstLabels: labels,
		}, func() float64 { return health().Outbox.OverdueSeconds }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "outbox_dead",
			Help: "Signal deliveries given up and kept for the operator.", ConstLabels: labels,
		}, func() float64 { return float64(health().Outbox.Dead) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNS, Subsystem: metricsSub, Name: "store_up",
			Help: "Whether the handler's store answers (1) or not (0).", ConstLabels: labels,
		}, func() float64 {
			if health().Store == "ok" {
				return 1
			}
			return 0
		}),
	}
	for _, g := range gauges {
		_ = reg.Register(g) // a second handler on the same namespace reads the same store
	}
}
