package botstate_test

import (
	"log"
	"os"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/botstate"
)

// A handler that writes each event into the user's private conversation
// data, under the property "handoff", where the bot reads it on the user's
// next turn.
func ExampleNew() {
	sig, err := botstate.New(botstate.Config{
		Endpoint:    "https://state.example.com",
		AppID:       os.Getenv("MICROSOFT_APP_ID"),
		AppPassword: os.Getenv("MICROSOFT_APP_PASSWORD"),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = flow.Config{Signals: []flow.Signal{sig}}
}
