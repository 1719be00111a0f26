package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
)

// TestMetricsLogsAndHealth walks a flow and checks what an operator sees:
// the metrics on Caddy's admin endpoint, one log line per transition without
// personal IDs or secrets, and the health endpoint.
func TestMetricsLogsAndHealth(t *testing.T) {
	s := newSiteEnv(t, "storage")
	alice, ctx := refFor("alice"), context.Background()
	link, _ := s.bot.Link("checkout", alice, nil, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)
	if _, err := s.bot.Verify(ctx, alice.Key(), "000000"+code[:0]); err == nil && code != "000000" {
		t.Fatal("wrong number accepted")
	}
	if _, err := s.bot.Verify(ctx, alice.Key(), code); err != nil {
		t.Fatal(err)
	}
	s.hooks.waitEvents(t, 1)

	// The bot has the event before the worker counts its delivery.
	delivered := `caddy_bot_handoff_deliveries_total{outcome="delivered",signal="webhook"} 1`
	metrics := scrapeUntil(t, s.caddy, delivered)
	for _, want := range []string{
		`caddy_bot_handoff_flows_total{flow="checkout",kind="site",status="pending"} 1`,
		`caddy_bot_handoff_flows_total{flow="checkout",kind="site",status="completed"} 1`,
		`caddy_bot_handoff_flows_total{flow="checkout",kind="site",status="verified"} 1`,
		`caddy_bot_handoff_verify_attempts_total{flow="checkout",outcome="invalid_code"} 1`,
		`caddy_bot_handoff_verify_attempts_total{flow="checkout",outcome="verified"} 1`,
		delivered,
		`caddy_bot_handoff_step_duration_seconds_count{flow="checkout",step="start"} 1`,
		`caddy_bot_handoff_outbox_pending{handler=`,
		`caddy_bot_handoff_store_up{handler=`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, "alice") || strings.Contains(metrics, code) {
		t.Error("metrics carry a user ID or a number")
	}

	waitLog(t, s.caddy, `"msg":"flow verified"`)
	logs := s.caddy.Logs()
	// A start is logged at DEBUG, a flow's end and its verification at INFO.
	for status, level := range map[string]string{
		"pending": "debug", "completed": "info", "verified": "info",
	} {
		line := regexp.MustCompile(`"level":"` + level + `"[^\n]*"msg":"flow ` + status +
			`"[^\n]*"flow_id":"[^"]+"[^\n]*"flow":"checkout"[^\n]*"channel":"msteams"`)
		if !line.MatchString(logs) {
			t.Errorf("no %s log line for the %s transition", level, status)
		}
	}
	assertNoSecrets(t, logs, code, link, linkSecret, webhookSecret)
	// The handler's own lines carry no personal IDs unless log_ids is on.
	// (Caddy's reverse_proxy, at DEBUG level, logs the headers it sends
	// upstream, which include the site flow's Handoff-* headers.)
	assertNoSecrets(t, ownLines(logs), "29:alice", "group-chat")

	resp, err := http.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h flow.Health
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Outbox.Pending != 0 {
		t.Errorf("health = %d %+v", resp.StatusCode, h)
	}
}

// TestLogIDs checks that log_ids adds the user and conversation to logs.
func TestLogIDs(t *testing.T) {
	up := testSite(t)
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		log_ids
		site checkout {
			to /checkout
		}
	}
	reverse_proxy %s
}
`, port, strings.TrimPrefix(up.URL, "http://"))
	}, botEnv...)
	b := bot(t, c.URL+"/handoff")
	link, _ := b.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	if resp, _ := newBrowser(t).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	// Caddy's log reaches the test through a pipe, a moment after the answer.
	waitLog(t, c, `"user":"29:alice"`)
}

// TestOutboxOutageThenRecovery stops the bot's webhook: the delivery waits
// in the outbox, shows in the health answer, and lands once the bot is back.
func TestOutboxOutageThenRecovery(t *testing.T) {
	s := newSiteEnv(t, "storage")
	s.hooks.setFail(true)
	link, _ := s.bot.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	s.finish(t, newBrowser(t), link)

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `"pending":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox never showed the delivery: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The metrics show it waiting and retried.
	waitLog(t, s.caddy, `"msg":"delivery failed; will retry"`)
	metrics := scrape(t, s.caddy)
	for _, want := range []string{
		`caddy_bot_handoff_outbox_pending{handler=`,
		`caddy_bot_handoff_deliveries_total{outcome="retried",signal="webhook"}`,
		`caddy_bot_handoff_outbox_overdue_seconds{handler=`,
		`caddy_bot_handoff_outbox_dead{handler=`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics during the outage lack %s", want)
		}
	}
	if !regexp.MustCompile(`caddy_bot_handoff_outbox_pending\{handler="[^"]+"\} 1\n`).MatchString(metrics) {
		t.Errorf("outbox_pending is not 1 during the outage")
	}

	// The operator sees it, without the event, and retries it now rather
	// than waiting for the backoff.
	admin := fmt.Sprintf("127.0.0.1:%d", s.caddy.Admin)
	out, err := Handoff(t, nil, "outbox", "--address", admin)
	if err != nil || !strings.Contains(out, `"type":"handoff.completed"`) ||
		!strings.Contains(out, `"signal":"webhook"`) || strings.Contains(out, "hook?") {
		t.Fatalf("caddy handoff outbox: %v: %s", err, out)
	}
	s.hooks.setFail(false)
	out, err = Handoff(t, nil, "outbox", "--address", admin, "--retry-all")
	if err != nil || !strings.Contains(out, `"retried":1`) {
		t.Fatalf("caddy handoff outbox --retry-all: %v: %s", err, out)
	}
	evs := s.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventCompleted {
		t.Errorf("event = %+v", evs[0])
	}
}

// ownLines returns the log lines of the bot_handoff handler.
func ownLines(logs string) string {
	var b strings.Builder
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"logger":"http.handlers.bot_handoff"`) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// scrapeUntil reads Caddy's metrics until they contain mark, or the wait
// runs out, and returns the last read.
func scrapeUntil(t *testing.T, c *Caddy, mark string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	metrics := scrape(t, c)
	for !strings.Contains(metrics, mark) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		metrics = scrape(t, c)
	}
	return metrics
}

// scrape reads Caddy's metrics from its admin endpoint.
func scrape(t *testing.T, c *Caddy) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.Admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBackupWhileServing copies a handler's log through the admin API
// while Caddy runs, and restores the copy as the docs say, in a directory
// of its own as 0.snap: the waiting delivery and the flow are in it.
func TestBackupWhileServing(t *testing.T) {
	s := newSiteEnv(t, "storage")
	s.hooks.setFail(true)
	link, _ := s.bot.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	s.finish(t, newBrowser(t), link)

	admin := fmt.Sprintf("127.0.0.1:%d", s.caddy.Admin)
	out, err := Handoff(t, nil, "outbox", "--address", admin)
	var handlers []struct{ Handler string }
	if err != nil || json.Unmarshal([]byte(out), &handlers) != nil || len(handlers) != 1 {
		t.Fatalf("caddy handoff outbox: %v: %s", err, out)
	}

	restored := t.TempDir()
	file := filepath.Join(restored, "0.snap")
	out, err = Handoff(t, nil, "backup", "--address", admin,
		"--handler", handlers[0].Handler, "--output", file)
	if err != nil {
		t.Fatalf("caddy handoff backup: %v: %s", err, out)
	}
	copied, err := logstore.Open(restored, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if _, n, err := copied.Timers(context.Background(), "d/", 10); err != nil || n != 1 {
		t.Errorf("deliveries waiting in the copy: %d, %v; want 1", n, err)
	}
	if _, n, _ := copied.Timers(context.Background(), "", 100); n < 2 {
		t.Errorf("%d timers in the copy; want the flow's and the delivery's", n)
	}

	out, err = Handoff(t, nil, "backup", "--address", admin, "--handler", "nobody",
		"--output", file+"2")
	if err == nil || !strings.Contains(out, "404") {
		t.Errorf("backup of an unknown handler: %v: %s", err, out)
	}
}
