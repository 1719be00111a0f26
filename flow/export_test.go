package flow

import "time"

// SetContestWait sets how long a contested return waits for another return
// of its flow, and how often it reads the flow meanwhile, so tests need not
// wait the default seconds.
func (e *Engine) SetContestWait(wait, poll time.Duration) {
	e.contestWait, e.contestPoll = wait, poll
}
