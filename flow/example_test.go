package flow_test

import (
	"fmt"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// A bot signs a link for a conversation; the handler checks it with the same
// key and reads who the flow is for.
func ExampleSigner_SignLink() {
	secret := []byte("a-link-secret-of-at-least-32-bytes!!")
	signer, _ := flow.SecretSigner("", secret)
	token, _ := signer.SignLink(flow.Link{
		Flow: "checkout",
		Ref: flow.Ref{
			ChannelID:    "msteams",
			ServiceURL:   "https://smba.trafficmanager.net/teams/",
			Conversation: flow.Conversation{ID: "19:chat"},
			User:         flow.Account{ID: "29:alice", Name: "Alice"},
		},
		Data:     map[string]any{"orderId": "o-1"},
		Audience: "https://shop.example.com/handoff",
		TTL:      10 * time.Minute,
	})

	key, _ := flow.SecretKey("", secret)
	verifier, _ := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}})
	claims, err := verifier.Link(token, "https://shop.example.com/handoff")
	fmt.Println(err, claims.Flow, claims.Ref.User.Name, string(claims.Data))

	// An API token is no link.
	api, _ := signer.SignAPI(flow.APIToken{Audience: "https://shop.example.com/handoff"})
	_, err = verifier.Link(api, "https://shop.example.com/handoff")
	fmt.Println(err != nil)
	// Output:
	// <nil> checkout Alice {"orderId":"o-1"}
	// true
}

// What a user pastes into a chat, with the markup some channels add, is
// read as the digits of the number.
func ExampleNormalizeCode() {
	fmt.Println(flow.NormalizeCode("<at>Contoso Bot 2</at> <p>123&nbsp;456</p>"))
	fmt.Println(flow.GroupCode("12345678"))
	// Output:
	// 123456
	// 12 345 678
}
