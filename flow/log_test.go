package flow_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// levels is a slog handler that keeps the level of each message.
type levels struct {
	mu  sync.Mutex
	got map[string]slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }

func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got[r.Message] = r.Level
	return nil
}

func (l *levels) of(msg string) (slog.Level, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv, ok := l.got[msg]
	return lv, ok
}

// TestTransitionLogLevels checks that a flow's start is logged at DEBUG and
// its end and verification at INFO, so that a log at INFO has a line for
// every flow without one for every start.
func TestTransitionLogLevels(t *testing.T) {
	logs := &levels{got: map[string]slog.Level{}}
	e := newEnv(t, func(c *flow.Config) { c.Logger = slog.New(logs) })

	code := e.finishSite(e.browser(), e.link())
	if _, err := e.bot.Verify(context.Background(), e.key(), code); err != nil {
		t.Fatal(err)
	}

	for msg, want := range map[string]slog.Level{
		"flow pending":   slog.LevelDebug,
		"flow completed": slog.LevelInfo,
		"flow verified":  slog.LevelInfo,
	} {
		got, ok := logs.of(msg)
		if !ok {
			t.Errorf("no %q line", msg)
		} else if got != want {
			t.Errorf("%q logged at %s, want %s", msg, got, want)
		}
	}
}
