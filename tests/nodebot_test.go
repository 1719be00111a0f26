package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

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
