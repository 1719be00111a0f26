package oauth_test

import (
	"encoding/json"
	"fmt"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/oauth"
)

// An engine outside Caddy configures its oauth flows like this; no request
// reaches the provider until the first user signs in.
func ExampleNew() {
	p, err := oauth.New(oauth.Config{
		Preset:       oauth.PresetEntra,
		Tenant:       "organizations",
		ClientID:     "6731de76-14a6-49ae-97bc-6eba6914391e",
		ClientSecret: "from-the-environment",
		Scopes:       []string{"profile", "offline_access", "Calendars.ReadWrite"},
	})
	if err != nil {
		panic(err)
	}
	flows := map[string]flow.FlowConfig{"work": {Provider: p}}

	fmt.Println(flows["work"].Provider.Kind(), p.Name(), p.Scopes())
	// Output: oauth entra [openid profile offline_access Calendars.ReadWrite]
}

// A Go bot decodes the verify API's result of an oauth flow into a Result.
func ExampleResult() {
	// res.Result, from botkit.Client.Verify.
	raw := json.RawMessage(`{"provider":"github","accessToken":"gho_16C7e42F292c6912E7710c8",
		"tokenType":"Bearer","scopes":["read:user"],"user":{"login":"octocat","id":583231}}`)

	var res oauth.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		panic(err)
	}
	var user struct {
		Login string `json:"login"`
	}
	_ = json.Unmarshal(res.User, &user)

	fmt.Println(res.Provider, res.Scopes, user.Login, res.ExpiresAt.IsZero())
	// Output: github [read:user] octocat true
}
