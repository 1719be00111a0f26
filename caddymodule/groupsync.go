package caddymodule

import "sync"

// groupSync runs one sync for any number of waiters: a waiter is done when a
// sync that started after it asked has ended. While one sync runs, those who
// ask meanwhile wait for the next, which one of them then runs for all.
type groupSync struct {
	do func() error

	mu      sync.Mutex
	cond    *sync.Cond
	asked   uint64 // tickets handed out
	synced  uint64 // the highest ticket a finished sync covered
	running bool
	err     error
}

// wait returns once the writes made before the call are synced.
func (g *groupSync) wait() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.asked++
	ticket := g.asked

	for g.synced < ticket {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		covers := g.asked
		g.mu.Unlock()
		err := g.do()
		g.mu.Lock()
		g.running, g.synced, g.err = false, covers, err
		g.cond.Broadcast()
	}
	return g.err
}
