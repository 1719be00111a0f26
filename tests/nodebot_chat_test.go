package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// The harness around the Node.js example bot: the node process that runs it
// in TestAdapter, and the relay that holds the handler's webhook events.

// nodeBotDir is the Node.js example bot, seen from this directory.
const nodeBotDir = "../examples/node-bot"

// hookRelay is where the handler posts its webhook events. It keeps them
// for the tests, which pass them on to the bot when they are ready for
// them, so that no event reaches the bot in the middle of a conversation.
type hookRelay struct {
	mu   sync.Mutex
	held []heldEvent
}

// heldEvent is one delivery as the handler posted it.
type heldEvent struct {
	body                []byte
	signature, delivery string
	event               flow.Event
}

func (h *hookRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	held := heldEvent{body: body, signature: r.Header.Get(webhook.HeaderSignature),
		delivery: r.Header.Get(webhook.HeaderDelivery)}
	if json.Unmarshal(body, &held.event) != nil {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.held = append(h.held, held)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the first event of type typ for user, waiting for it to
// arrive: the handler delivers from its outbox, asynchronously.
func (h *hookRelay) wait(t *testing.T, typ, user string) heldEvent {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ev := range h.held {
			if ev.event.Type == typ && ev.event.Ref.User.ID == user {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s", typ, user)
	return heldEvent{}
}

// requireNodeBot returns the node binary, failing the test if node or the
// bot's npm packages are not installed.
func requireNodeBot(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed; run scripts/setup.sh: %v", err)
	}
	pkg := filepath.Join(nodeBotDir, "node_modules", "botbuilder", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		t.Fatalf("the node bot's packages are missing; run scripts/setup.sh "+
			"(npm ci in examples/node-bot): %v", err)
	}
	return node
}

// chatUser is who types a message, and in which conversation.
type chatUser struct {
	ID, Name, Conv string
	Group          bool
	// Mention makes the user's messages @-mention the bot first.
	Mention bool
}

// reply is what the test reads of one of the bot's replies: its text, and
// its card's title and OpenUrl button.
type reply struct {
	// To is the user a proactive message went to.
	To    string `json:"to"`
	Text  string `json:"text"`
	Title string `json:"title"`
	Link  string `json:"link"`
}

// chat is the bot in TestAdapter, in a node process: one JSON command a
// line in, one JSON answer a line out (see test/harness.js).
type chat struct {
	in     io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	// webhook is the bot's endpoint for the handler's events.
	webhook string
	// offset is how far the bot's clock, and the handler's, were moved.
	offset time.Duration
}

func startChat(t *testing.T, node string, env ...string) *chat {
	t.Helper()
	cmd := exec.Command(node, "test/harness.js")
	cmd.Dir = nodeBotDir
	cmd.Env = append(os.Environ(), env...)
	c := &chat{lines: make(chan string), stderr: &syncBuffer{}}
	cmd.Stderr = c.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.in = in
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	c.ready(t)
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// ready reads the harness's first line, which names its webhook endpoint.
func (c *chat) ready(t *testing.T) {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		var r struct{ Ready struct{ Webhook string } }
		if !ok || json.Unmarshal([]byte(line), &r) != nil {
			t.Fatalf("the bot did not start: %q\n%s", line, c.stderr.String())
		}
		c.webhook = r.Ready.Webhook
	case <-time.After(waitLimit):
		t.Fatalf("the bot did not start:\n%s", c.stderr.String())
	}
}

// deliver posts a held event to the bot's webhook endpoint, as the handler
// did to the relay, and returns the status the bot answered.
func (c *chat) deliver(t *testing.T, ev heldEvent) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.webhook, bytes.NewReader(ev.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderSignature, ev.signature)
	req.Header.Set(webhook.HeaderDelivery, ev.delivery)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delivering to the bot: %v\n%s", err, c.stderr.String())
	}
	resp.Body.Close()
	return resp.StatusCode
}

// chatT is the chat in one test, which its failures fail.
type chatT struct {
	*chat
	t *testing.T
}

func (c *chat) as(t *testing.T) chatT { return chatT{c, t} }

// send writes one command and returns the answer.
func (c chatT) send(cmd any) json.RawMessage {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("writing to the bot: %v\n%s", err, c.stderr.String())
	}
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("the bot's process ended:\n%s", c.stderr.String())
		}
		var failed struct{ Error string }
		if json.Unmarshal([]byte(line), &failed) == nil && failed.Error != "" {
			c.t.Fatalf("the bot failed: %s\n%s", failed.Error, c.stderr.String())
		}
		return json.RawMessage(line)
	case <-time.After(waitLimit):
		c.t.Fatalf("no answer from the bot:\n%s", c.stderr.String())
	}
	return nil
}

// say sends text as u and returns the bot's replies, at least one.
func (c chatT) say(u chatUser, text string) []reply {
	c.t.Helper()
	answer := c.send(map[string]any{
		"say":          text,
		"from":         map[string]string{"id": u.ID, "name": u.Name},
		"conversation": map[string]any{"id": u.Conv, "isGroup": u.Group},
		"mention":      u.Mention,
	})
	var out struct{ Replies []reply }
	if err := json.Unmarshal(answer, &out); err != nil || len(out.Replies) == 0 {
		c.t.Fatalf("%s said %q; the bot answered %s", u.Name, text, answer)
	}
	return out.Replies
}

// proactive returns what the bot said on its own since the last call.
func (c chatT) proactive() []reply {
	c.t.Helper()
	var out struct{ Replies []reply }
	if err := json.Unmarshal(c.send(map[string]any{"proactive": true}), &out); err != nil {
		c.t.Fatal(err)
	}
	return out.Replies
}

// expectProactive checks that the bot said one thing on its own, to u,
// containing want.
func (c chatT) expectProactive(u chatUser, want string) {
	c.t.Helper()
	replies := c.proactive()
	if len(replies) != 1 || replies[0].To != u.ID || !strings.Contains(replies[0].Text, want) {
		c.t.Errorf("the bot said on its own %+v; want %q to %s", replies, want, u.Name)
	}
}

// expect sends text as u and checks that the bot's one reply contains want.
func (c chatT) expect(u chatUser, text, want string) {
	c.t.Helper()
	replies := c.say(u, text)
	if len(replies) != 1 || !strings.Contains(replies[0].Text, want) {
		c.t.Errorf("%s said %q; the bot answered %+v; want %q", u.Name, text, replies, want)
	}
}
