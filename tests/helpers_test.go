package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// Secrets of the tests' bot and webhook.
const (
	linkSecret    = "test-link-secret-0123456789abcdef0123"
	webhookSecret = "test-webhook-secret-0123456789abcdef"
)

// waitLimit bounds every wait for something asynchronous (a delivery, a
// log line): generous, since a loaded two-core machine may be slow, and
// reached only when a test fails.
const waitLimit = 90 * time.Second

// botEnv is the environment Caddy and the handoff command get.
var botEnv = []string{
	"HANDOFF_LINK_SECRET=" + linkSecret,
	"HANDOFF_WEBHOOK_SECRET=" + webhookSecret,
}

// bot returns a bot API client for the handler at base (origin + prefix).
func bot(t *testing.T, base string) *botkit.Client {
	t.Helper()
	s, err := flow.SecretSigner("", []byte(linkSecret))
	if err != nil {
		t.Fatal(err)
	}
	return &botkit.Client{URL: base, Signer: s}
}

// refFor returns a conversation reference for a user in a group chat.
func refFor(user string) flow.Ref {
	return flow.Ref{
		ChannelID: "msteams", ServiceURL: "https://smba.example.com/teams/",
		Conversation: flow.Conversation{ID: "19:group-chat@thread.v2", IsGroup: true},
		User:         flow.Account{ID: "29:" + user, Name: user},
	}
}

// browser is a client with its own cookies, not following redirects.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: noRedirect(jar)}
}

// do sends a request and returns the response with its body read.
func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// open follows a link as a user does: the continue page, then its button.
func (b *browser) open(link string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.get(link)
	if resp.StatusCode != http.StatusOK {
		return resp, body
	}
	m := regexp.MustCompile(`name="t" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no form on the continue page: %s", body)
	}
	u, _ := url.Parse(link)
	form := url.Values{"t": {htmlUnescape(m[1])}}
	req, _ := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+u.Path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	return b.do(req)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'").Replace(s)
}

var codePattern = regexp.MustCompile(`data-code="(\d+)"`)

// numberOn returns the magic number on a finish page.
func numberOn(t *testing.T, body string) string {
	t.Helper()
	m := codePattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no number on the page: %s", body)
	}
	return m[1]
}

// advanceClock moves the handler's insecure test clock forward by d, from
// where earlier calls left it: offset ahead of real time.
func advanceClock(t *testing.T, base string, offset, d time.Duration) {
	t.Helper()
	s, _ := flow.SecretSigner("", []byte(linkSecret))
	tok, err := s.SignAPI(flow.APIToken{Audience: base, Now: time.Now().Add(offset)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"advance": d.String()})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/test/clock", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("advancing clock: %d %s", resp.StatusCode, b)
	}
}

// hookReceiver is the bot's webhook endpoint: it checks signatures and keeps
// the events, deduplicated by ID as a bot should.
type hookReceiver struct {
	mu     sync.Mutex
	events map[string]flow.Event
	order  []string
	fail   bool
	bad    int
}

func newHookReceiver() *hookReceiver { return &hookReceiver{events: map[string]flow.Event{}} }

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	err := webhook.Verify([]byte(webhookSecret), r.Header.Get(webhook.HeaderSignature), body,
		time.Now(), webhook.DefaultTolerance)
	var ev flow.Event
	if err != nil || json.Unmarshal(body, &ev) != nil || r.Header.Get(webhook.HeaderDelivery) != ev.ID {
		h.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if _, dup := h.events[ev.ID]; !dup {
		h.order = append(h.order, ev.ID)
	}
	h.events[ev.ID] = ev
}

func (h *hookReceiver) setFail(fail bool) {
	h.mu.Lock()
	h.fail = fail
	h.mu.Unlock()
}

// list returns the events received, in order of arrival.
func (h *hookReceiver) list() []flow.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]flow.Event, 0, len(h.order))
	for _, id := range h.order {
		out = append(out, h.events[id])
	}
	return out
}

// waitEvents waits until n events arrived; delivery is asynchronous.
func (h *hookReceiver) waitEvents(t *testing.T, n int) []flow.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		if evs := h.list(); len(evs) >= n {
			return evs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited for %d events; got %+v", n, h.list())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
