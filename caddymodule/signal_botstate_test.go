package caddymodule

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestBotStateCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`signal bot_state {
		endpoint https://state.example.com
		app_id {env.MICROSOFT_APP_ID}
		app_password {env.MICROSOFT_APP_PASSWORD}
		token_url https://login.example.com/token
		scope https://api.example.com/.default
		property signIn
		data user
	}`)
	var s BotStateSignal
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s)
	want := `{"endpoint":"https://state.example.com","app_id":"{env.MICROSOFT_APP_ID}",` +
		`"app_password":"{env.MICROSOFT_APP_PASSWORD}","token_url":"https://login.example.com/token",` +
		`"scope":"https://api.example.com/.default","property":"signIn","data":"user"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestBotStateCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"signal bot_state https://x {\n}":                           "wrong argument count",
		"signal bot_state {\n\tendpoint\n}":                         "wrong argument count",
		"signal bot_state {\n\tdata everyone\n}":                    "private, user or conversation",
		"signal bot_state {\n\tsecret x\n}":                         `unrecognized subdirective "secret"`,
		"signal bot_state {\n\tscope a\n\tscope b\n}":               `"scope" given twice`,
		"signal bot_state {\n\tendpoint https://a https://b\n}":     "wrong argument count",
		"signal bot_state {\n\tproperty handoff\n\tdata private\n}": "",
	}
	for in, want := range cases {
		var s BotStateSignal
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: err = %v; want %q", in, err, want)
		}
	}
}

func TestBotStateProvision(t *testing.T) {
	t.Setenv("TEST_APP_ID", "app-1")
	t.Setenv("TEST_APP_PASSWORD", "password-1")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	s := BotStateSignal{
		Endpoint: "https://state.example.com", AppID: "{env.TEST_APP_ID}",
		AppPassword: "{env.TEST_APP_PASSWORD}", Data: "conversation",
	}
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Signal().ID(), "bot_state https://state.example.com conversation"; got != want {
		t.Errorf("ID() = %q; want %q", got, want)
	}

	s.AppPassword = "{env.TEST_UNSET_PASSWORD}"
	if err := s.Provision(ctx); err == nil || !strings.Contains(err.Error(), "app_password") {
		t.Errorf("unset password: %v", err)
	}
	s.AppPassword, s.Endpoint = "p", "http://state.example.com"
	if err := s.Provision(ctx); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http endpoint: %v", err)
	}
}

func TestBotStateBesideWebhookAdapts(t *testing.T) {
	in := `example.com {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		site checkout {
			to /checkout
		}
		signal bot_state {
			endpoint https://state.example.com
			app_id {env.MICROSOFT_APP_ID}
			app_password {env.MICROSOFT_APP_PASSWORD}
		}
		signal webhook https://bot.example.com/api/handoff {
			secret {env.HANDOFF_WEBHOOK_SECRET}
		}
	}
}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"signals":[{"app_id":"{env.MICROSOFT_APP_ID}","app_password":"{env.MICROSOFT_APP_PASSWORD}",` +
			`"endpoint":"https://state.example.com","signal":"bot_state"},`,
		`{"secret":"{env.HANDOFF_WEBHOOK_SECRET}","signal":"webhook",` +
			`"url":"https://bot.example.com/api/handoff"}]`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
}
