package flow

import (
	"sync/atomic"
	"time"
)

// An OffsetClock is real time moved forward by an offset that only grows.
// It lets integration tests expire flows and numbers without sleeping; a
// handler uses it only when the operator turns on an insecure test switch.
type OffsetClock struct {
	offset atomic.Int64
}

// Now returns the real time plus the offset.
func (c *OffsetClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// Advance moves the clock forward by d; a negative d is ignored, so that
// time never runs backwards for the flows.
func (c *OffsetClock) Advance(d time.Duration) {
	if d > 0 {
		c.offset.Add(int64(d))
	}
}
