package botkit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// The conversation the examples' bot serves: the reference comes from the
// user's message activity (channelId, serviceUrl, conversation, from,
// recipient).
var alice = flow.Ref{
	ChannelID:    "msteams",
	ServiceURL:   "https://smba.trafficmanager.net/emea/",
	Conversation: flow.Conversation{ID: "19:chat-with-alice@thread.v2"},
	User:         flow.Account{ID: "29:alice"},
	Bot:          &flow.Account{ID: "28:shop-bot"},
}

// A bot signs a link for the conversation, sends it, and checks the number
// the user pastes when they are back from the browser.
func Example() {
	handler := startHandler() // bot_handoff with a site flow "checkout"
	defer handler.Close()

	signer, err := flow.SecretSigner("", linkSecret) // os.Getenv("HANDOFF_LINK_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	bot := &botkit.Client{URL: handler.URL + "/handoff", Signer: signer}

	link, err := bot.Link("checkout", alice, map[string]any{"orderId": "o-1001"}, 10*time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	// The bot sends the link in a card; the user finishes in the browser
	// and pastes the number, with whatever the channel adds around it.
	pasted := "here it is: " + flow.GroupCode(userFinishes(link))

	res, err := bot.Verify(context.Background(), alice.Key(), pasted)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.Flow, string(res.Result))
	// Output: verified checkout {"orderId":"o-1001","status":"confirmed"}
}

// Each error of the bot API has a code, and an invalid_code says how many
// tries are left; the bot tells the user what to do next.
func ExampleIsCode() {
	handler := startHandler()
	defer handler.Close()
	signer, _ := flow.SecretSigner("", linkSecret)
	bot := &botkit.Client{URL: handler.URL + "/handoff", Signer: signer}
	ctx := context.Background()

	link, _ := bot.Link("checkout", alice, nil, 0)
	code := userFinishes(link)

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	_, err := bot.Verify(ctx, alice.Key(), wrong)
	var apiErr *botkit.APIError
	switch {
	case botkit.IsCode(err, "invalid_code") && errors.As(err, &apiErr):
		fmt.Printf("That number is not right; %d tries left.\n", *apiErr.AttemptsLeft)
	case err != nil:
		fmt.Println("Something went wrong:", err)
	}

	_, err = bot.Verify(ctx, alice.Key(), code)
	fmt.Println("right number:", err == nil)
	_, err = bot.Verify(ctx, alice.Key(), code)
	fmt.Println("again:", botkit.IsCode(err, "already_finished"))
	// Output:
	// That number is not right; 4 tries left.
	// right number: true
	// again: true
}

// While waiting, a bot may ask where the flow stands. Before the user opens
// the link there is no flow; once they pressed Continue it is pending; a
// bot may cancel it when the user changes their mind.
func ExampleClient_Status() {
	handler := startHandler()
	defer handler.Close()
	signer, _ := flow.SecretSigner("", linkSecret)
	bot := &botkit.Client{URL: handler.URL + "/handoff", Signer: signer}
	ctx := context.Background()

	link, _ := bot.Link("checkout", alice, nil, 0)
	_, err := bot.Status(ctx, alice.Key())
	fmt.Println("before the link is opened:", botkit.IsCode(err, "no_flow"))

	userFinishes(link)
	st, _ := bot.Status(ctx, alice.Key())
	fmt.Println("after the browser:", st.Status, st.Flow, st.Kind)

	st, _ = bot.Cancel(ctx, alice.Key())
	fmt.Println("after cancel:", st.Status)
	// Output:
	// before the link is opened: true
	// after the browser: completed checkout site
	// after cancel: cancelled
}

// The bot_state signal writes the newest event into the bot's private
// conversation data, under "handoff"; the bot reads it on the user's next
// turn.
func ExampleParseState() {
	record := []byte(`{
	  "data": {
	    "dialogStack": [],
	    "handoff": {
	      "type": "handoff.expired", "id": "ev-1", "createdAt": "2026-05-01T12:00:00Z",
	      "flowId": "f-1", "flow": "checkout", "kind": "site", "status": "expired",
	      "ref": {"channelId": "msteams",
	              "serviceUrl": "https://smba.trafficmanager.net/emea/",
	              "conversation": {"id": "19:chat-with-alice@thread.v2"},
	              "user": {"id": "29:alice"}}
	    }
	  },
	  "eTag": "W/\"1\""
	}`)
	ev, err := botkit.ParseState(record, "")
	if err != nil {
		log.Fatal(err)
	}
	if ev != nil && ev.Ref.Key() == alice.Key() && ev.Type == flow.EventExpired {
		fmt.Println("The link expired; here is a new one.")
	}
	// Output: The link expired; here is a new one.
}

// A bot's webhook endpoint checks the signature of each event before it
// trusts it, and acts once per event ID.
func ExampleWebhook() {
	secret := []byte("example-webhook-secret-0123456789abcdef") // HANDOFF_WEBHOOK_SECRET
	seen := map[string]bool{}
	hook := &botkit.Webhook{
		Secret: secret,
		Handle: func(_ context.Context, ev *botkit.Event) error {
			if seen[ev.ID] {
				return nil // a retried delivery
			}
			seen[ev.ID] = true
			fmt.Println(ev.Type, ev.Flow, "for", ev.Ref.User.ID)
			return nil
		},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/handoff", hook)

	// What the handler posts, once signed and once forged.
	body := []byte(`{"type":"handoff.completed","id":"ev-2","createdAt":"2026-05-01T12:00:00Z",
	  "flowId":"f-2","flow":"checkout","kind":"site","status":"completed",
	  "ref":{"channelId":"msteams","serviceUrl":"https://smba.trafficmanager.net/emea/",
	         "conversation":{"id":"19:chat-with-alice@thread.v2"},"user":{"id":"29:alice"}}}`)
	for _, sig := range []string{webhook.Sign(secret, time.Now(), body), "t=1,v1=00"} {
		fmt.Println(post(mux, "/api/handoff", sig, body))
	}
	// Output:
	// handoff.completed checkout for 29:alice
	// 204
	// 401
}
