package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// nodeBotDir is the Node.js example bot, seen from this directory.
const nodeBotDir = "../examples/node-bot"

// TestNodeBot runs the Node.js example bot (examples/node-bot) in
// botbuilder's TestAdapter against a real Caddy with a site flow and an
// OpenID Connect flow at mockoidc. The test plays the users: it types
// their messages to the bot, opens the link from the bot's card in a
// browser, and pastes the number back into the chat. The handler's webhook
// goes to a relay in the test, which passes events on to the bot when a
// test asks for them.
func TestNodeBot(t *testing.T) {
	e := newNodeBotEnv(t)
	t.Run("order", e.order)
	t.Run("group chat sign-in", e.groupSignIn)
	t.Run("webhook", e.webhook)
	// Moves the handler's clock, so it runs last.
	t.Run("expiry and cancel", e.expiryAndCancel)
}

type nodeBotEnv struct {
	caddy *Caddy
	base  string
	idp   *mockIdP
	chat  *chat
	hooks *hookRelay
}

func newNodeBotEnv(t *testing.T) *nodeBotEnv {
	t.Helper()
	node := requireNodeBot(t)
	shop := testSite(t)
	e := &nodeBotEnv{idp: newMockIdP(t, "bot-client", idpClientSecret).start("127.0.0.1:0"),
		hooks: &hookRelay{}}
	relay := httptest.NewServer(e.hooks)
	t.Cleanup(relay.Close)
	env := append(slices.Clone(botEnv), "IDP_CLIENT_SECRET="+idpClientSecret)
	e.caddy = startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		insecure_test_clock
		site checkout {
			to /checkout
			ttl 5m
		}
		oauth signin {
			issuer %s
			client_id bot-client
			client_secret {env.IDP_CLIENT_SECRET}
		}
		signal webhook %s {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
	reverse_proxy %s
}
`, port, e.idp.issuer(), relay.URL, strings.TrimPrefix(shop.URL, "http://"))
	}, env...)
	e.idp.redirectURI = e.caddy.URL + "/handoff/callback"
	e.base = e.caddy.URL + "/handoff"
	e.chat = startChat(t, node, "HANDOFF_URL="+e.base, "HANDOFF_LINK_SECRET="+linkSecret,
		"HANDOFF_WEBHOOK_SECRET="+webhookSecret,
		"HANDOFF_SIGNIN_FLOW=signin", "HANDOFF_ORDER_FLOW=checkout", "HANDOFF_PAY_FLOW=")
	return e
}

// order: a user orders on the shop's site in a one-to-one chat, talks to
// the bot while it waits, and pastes the number.
func (e *nodeBotEnv) order(t *testing.T) {
	c, alice := e.chat.as(t), chatUser{ID: "29:alice", Name: "Alice", Conv: "a:dm-alice"}

	c.expect(alice, "hi", `Say "sign in", "order", or "cancel".`)
	c.expect(alice, "123456", "I'm not waiting for a number from you.")
	card := c.say(alice, "Order!")[0]
	if card.Title != "Confirm your order" || !strings.HasPrefix(card.Link, e.base+"/start?t=") {
		t.Fatalf("order card = %+v", card)
	}
	checkLinkToken(t, card.Link, e.base, "checkout", alice)
	c.expect(alice, "done?", "I'm still waiting for you to open the link and finish")

	b := newBrowser(t)
	e.openTask(t, b, card.Link)
	c.expect(alice, "are you still there?", "I'm still waiting for you to finish in the browser")
	c.expect(alice, "111", "I'm still waiting for you to finish in the browser")

	code := e.confirm(t, b)
	c.expect(alice, "here it is: "+flow.GroupCode(code), "Thanks! Your order order-7 is confirmed.")
	e.wantStatus(t, alice, flow.StatusVerified)
	c.expect(alice, code, "I'm not waiting for a number from you.")
}

// groupSignIn: Alice signs in from a group chat. Bob, in the same chat,
// opens her link and is refused; the number of his own sign-in is wrong
// for her; each is greeted by the name the provider gave.
func (e *nodeBotEnv) groupSignIn(t *testing.T) {
	c := e.chat.as(t)
	conv := "19:team-chat@thread.v2"
	alice := chatUser{ID: "29:alice", Name: "Alice", Conv: conv, Group: true}
	bob := chatUser{ID: "29:bob", Name: "Bob", Conv: conv, Group: true}

	card := c.say(alice, "sign in")[0]
	if card.Title != "Sign in" || card.Link == "" ||
		!strings.Contains(card.Text, "This link is for Alice only.") {
		t.Fatalf("sign-in card = %+v", card)
	}
	e.queueUser("Alice Example", "alice@example.com")
	codeAlice := e.signIn(t, newSignInBrowser(t), card.Link)

	bobs := newSignInBrowser(t)
	resp, body := bobs.open(card.Link)
	if resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "This link was already used") {
		t.Fatalf("Bob opening Alice's link: %d: %s", resp.StatusCode, body)
	}

	bob.Mention = true // as in Teams, where a group chat's bot reads only mentions
	bobCard := c.say(bob, "Sign in")[0]
	e.queueUser("Bob Builder", "bob@example.com")
	codeBob := e.signIn(t, bobs, bobCard.Link)

	c.expect(alice, codeBob, "Alice: That number is not right. You have 4 tries left.")
	c.expect(alice, codeAlice, "Alice: Hello, Alice Example! You are signed in.")
	c.expect(bob, "my number is "+codeBob, "Bob: Hello, Bob Builder! You are signed in.")
	e.wantStatus(t, alice, flow.StatusVerified)
	e.wantStatus(t, bob, flow.StatusVerified)
}

// webhook: the handler's events reach the bot, which tells the user on its
// own: a finished order, and a sign-in the user declined. A forged event is
// refused, and a repeated one changes nothing.
func (e *nodeBotEnv) webhook(t *testing.T) {
	c := e.chat.as(t)
	dave := chatUser{ID: "29:dave", Name: "Dave", Conv: "a:dm-dave"}

	card := c.say(dave, "order")[0]
	b := newBrowser(t)
	e.openTask(t, b, card.Link)
	code := e.confirm(t, b)
	completed := e.hooks.wait(t, flow.EventCompleted, dave.ID)
	if got := e.chat.deliver(t, completed); got != http.StatusNoContent {
		t.Fatalf("delivering the event: %d", got)
	}
	c.expectProactive(dave, "You are done in the browser. Paste the number it shows here.")

	forged := completed
	forged.body = []byte(strings.Replace(string(completed.body), `"completed"`, `"failed"`, 1))
	if got := e.chat.deliver(t, forged); got != http.StatusUnauthorized {
		t.Errorf("forged event answered %d; want 401", got)
	}
	if got := e.chat.deliver(t, completed); got != http.StatusNoContent {
		t.Errorf("repeated event answered %d; want 204", got)
	}
	if replies := c.proactive(); len(replies) != 0 {
		t.Errorf("after a forged and a repeated event the bot said %+v", replies)
	}
	c.expect(dave, code, "Thanks! Your order order-7 is confirmed.")

	erin := chatUser{ID: "29:erin", Name: "Erin", Conv: "a:dm-erin"}
	card = c.say(erin, "sign in")[0]
	e.idp.set(func(p *mockIdP) { p.decline = true })
	defer e.idp.set(func(p *mockIdP) { p.decline = false })
	if resp, body := newSignInBrowser(t).open(card.Link); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("declined sign-in: %d: %s", resp.StatusCode, body)
	}
	e.chat.deliver(t, e.hooks.wait(t, flow.EventFailed, erin.ID))
	c.expectProactive(erin, `You cancelled the sign-in. Say "sign in" to try again.`)
	c.expect(erin, "hello", `Say "sign in", "order", or "cancel".`)
}

// expiryAndCancel: a flow left unfinished past its TTL; the bot finds out
// from the status API and sends a new link, which works. Then a user
// cancels.
func (e *nodeBotEnv) expiryAndCancel(t *testing.T) {
	c, carol := e.chat.as(t), chatUser{ID: "29:carol", Name: "Carol", Conv: "a:dm-carol"}

	first := c.say(carol, "order")[0]
	b := newBrowser(t)
	e.openTask(t, b, first.Link)
	c.expect(carol, "hello?", "I'm still waiting for you to finish in the browser")

	e.advance(t, 6*time.Minute) // the site flow's ttl is 5m
	again := c.say(carol, "hello?")[0]
	if !strings.Contains(again.Text, "That request expired before it was finished.") ||
		again.Link == "" || again.Link == first.Link {
		t.Fatalf("after expiry = %+v; want a new link", again)
	}
	e.openTask(t, b, again.Link)
	code := e.confirm(t, b)
	c.expect(carol, code, "Thanks! Your order order-7 is confirmed.")

	c.say(carol, "order")
	c.expect(carol, "cancel", "Cancelled.")
	c.expect(carol, "cancel", "There is nothing to cancel.")
}

// openTask opens a link in b and reaches the shop's task page: the flow is
// now pending.
func (e *nodeBotEnv) openTask(t *testing.T, b *browser, link string) {
	t.Helper()
	resp, body := b.open(link)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != e.caddy.URL+"/checkout" {
		t.Fatalf("start: %d %q: %s", resp.StatusCode, loc, body)
	}
	if resp, body = b.get(e.caddy.URL + "/checkout"); resp.StatusCode != http.StatusOK {
		t.Fatalf("task page: %d: %s", resp.StatusCode, body)
	}
}

// confirm finishes the shop's task in b and returns the number shown.
func (e *nodeBotEnv) confirm(t *testing.T, b *browser) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.caddy.URL+"/checkout/confirm", nil)
	resp, body := b.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish page: %d: %s", resp.StatusCode, body)
	}
	return numberOn(t, body)
}

// signIn signs in at the provider in b and returns the number shown.
func (e *nodeBotEnv) signIn(t *testing.T, b *signInBrowser, link string) string {
	t.Helper()
	resp, body := b.open(link)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in ended with %d: %s", resp.StatusCode, body)
	}
	return numberOn(t, body)
}

// queueUser makes the next sign-in at mockoidc that of a user with a name.
func (e *nodeBotEnv) queueUser(name, email string) {
	e.idp.m.QueueUser(&namedUser{MockUser: &mockoidc.MockUser{Subject: email, Email: email},
		name: name})
}

// wantStatus checks a flow's status through the bot API, as the bot sees it.
func (e *nodeBotEnv) wantStatus(t *testing.T, u chatUser, want flow.Status) {
	t.Helper()
	k := flow.Key{ChannelID: "test", ConversationID: u.Conv, UserID: u.ID}
	st, err := bot(t, e.base).Status(context.Background(), k)
	if err != nil || st.Status != want {
		t.Errorf("status of %s = %+v, %v; want %s", u.Name, st, err, want)
	}
}

// advance moves the handler's clock and the bot's by d.
func (e *nodeBotEnv) advance(t *testing.T, d time.Duration) {
	t.Helper()
	advanceClock(t, e.base, e.chat.offset, d)
	e.chat.as(t).send(map[string]any{"advance": d.Seconds()})
	e.chat.offset += d
}

// checkLinkToken checks the link the Node bot signed against the link
// format: typ, audience, lifetime, jti, flow and reference.
func checkLinkToken(t *testing.T, link, aud, name string, u chatUser) {
	t.Helper()
	token := link[strings.Index(link, "?t=")+3:]
	var claims flow.LinkClaims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		t.Fatal(err)
	}
	ref := claims.Ref
	if tok.Header["typ"] != flow.TypeLink || tok.Header["alg"] != "HS256" ||
		!slices.Equal(claims.Audience, jwt.ClaimStrings{aud}) || claims.ID == "" ||
		claims.ExpiresAt.Sub(claims.IssuedAt.Time) != 10*time.Minute || claims.Flow != name ||
		ref.ChannelID != "test" || ref.ServiceURL == "" || ref.Conversation.ID != u.Conv ||
		ref.User.ID != u.ID || ref.Bot == nil || ref.Bot.ID == "" {
		t.Errorf("link token: header %v, claims %+v", tok.Header, claims)
	}
}

// namedUser is a mockoidc user whose ID token carries a name, as with most
// providers' profile scope; mockoidc's own user has none.
type namedUser struct {
	*mockoidc.MockUser
	name string
}

func (u *namedUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		Name  string `json:"name"`
		Email string `json:"email"`
	}{base, u.name, u.Email}, nil
}

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
	deadline := time.Now().Add(20 * time.Second)
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
	case <-time.After(20 * time.Second):
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
	case <-time.After(20 * time.Second):
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
