package flow

import "time"

// An Observer receives the engine's measurements, for metrics. Every label
// it is given is bounded: flow names and kinds from the configuration,
// statuses, outcomes and signal kinds from fixed sets; never an ID.
type Observer interface {
	// FlowStatus counts a flow reaching a status.
	FlowStatus(flow, kind string, status Status)
	// VerifyAttempt counts a verify call by outcome: verified,
	// invalid_code, locked, expired, no_flow, not_completed, spent.
	VerifyAttempt(flow, outcome string)
	// Delivery counts a delivery attempt by outcome: delivered, retried,
	// failed.
	Delivery(signal, outcome string)
	// Duration records how long a step took: start, return, webhook,
	// provider.
	Duration(step, flow string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) FlowStatus(string, string, Status)      {}
func (nopObserver) VerifyAttempt(string, string)           {}
func (nopObserver) Delivery(string, string)                {}
func (nopObserver) Duration(string, string, time.Duration) {}
