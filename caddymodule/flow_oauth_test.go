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

func TestOAuthFlowCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oauth entra {
		preset entra {env.TENANT}
		client_id {env.CLIENT_ID}
		client_secret {file./run/secrets/entra}
		scopes openid profile offline_access Calendars.ReadWrite
		auth_params {
			prompt select_account
			domain_hint contoso.com
		}
		authority https://login.microsoftonline.us
		timeout 5s
		ttl 20m
	}`)
	var o OAuthFlow
	if err := o.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(o)
	want := `{"name":"entra","ttl":1200000000000,"preset":"entra","tenant":"{env.TENANT}",` +
		`"authority":"https://login.microsoftonline.us","client_id":"{env.CLIENT_ID}",` +
		`"client_secret":"{file./run/secrets/entra}",` +
		`"scopes":["openid","profile","offline_access","Calendars.ReadWrite"],` +
		`"auth_params":{"domain_hint":"contoso.com","prompt":"select_account"},"timeout":5000000000}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestOAuthFlowCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"no name":           `oauth { preset google }`,
		"unknown":           "oauth x {\n preset google\n colour blue\n}",
		"repeated":          "oauth x {\n client_id a\n client_id b\n}",
		"entra no tenant":   "oauth x {\n preset entra\n}",
		"unknown preset":    "oauth x {\n preset okta\n}",
		"google with arg":   "oauth x {\n preset google extra\n}",
		"no scopes":         "oauth x {\n scopes\n}",
		"params twice":      "oauth x {\n auth_params {\n prompt a\n prompt b\n }\n}",
		"params no value":   "oauth x {\n auth_params {\n prompt\n }\n}",
		"params empty":      "oauth x {\n auth_params {\n }\n}",
		"bad timeout":       "oauth x {\n timeout soon\n}",
		"two client ids":    "oauth x {\n client_id a b\n}",
		"params inline arg": "oauth x {\n auth_params prompt\n}",
	}
	for name, input := range cases {
		var o OAuthFlow
		if err := o.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
			t.Errorf("%s: no error for %q", name, input)
		}
	}

	// Errors name the line they are on.
	var o OAuthFlow
	err := o.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth x {\n preset google\n colour blue\n}"))
	if err == nil || !strings.Contains(err.Error(), ":3") {
		t.Errorf("error without its line: %v", err)
	}
}

func TestOAuthFlowsInHandlerCaddyfile(t *testing.T) {
	input := `example.com {
	bot_handoff {
		link_key secret {env.LINK}
		oauth work {
			preset entra organizations
			client_id id1
			client_secret {env.S1}
		}
		oauth code {
			preset github
			client_id id2
			client_secret {env.S2}
		}
		oauth later {
			preset google
			client_id id3
			client_secret {env.S3}
			enabled false
		}
	}
}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`"kind":"oauth","name":"work","preset":"entra","tenant":"organizations"`,
		`"kind":"oauth","name":"code","preset":"github"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, `"later"`) {
		t.Errorf("a disabled flow was adapted: %s", s)
	}
}

func TestOAuthFlowProvision(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	t.Setenv("TEST_TENANT", "contoso.onmicrosoft.com")
	t.Setenv("TEST_OAUTH_SECRET", "s3cr3t")

	o := OAuthFlow{FlowCommon: FlowCommon{Name: "work"}, Preset: "entra", Tenant: "{env.TEST_TENANT}",
		ClientID: "id", ClientSecret: "{env.TEST_OAUTH_SECRET}"}
	if err := o.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if fc := o.FlowConfig(); fc.Provider == nil || fc.Provider.Kind() != "oauth" {
		t.Errorf("flow config = %+v", fc)
	}

	bad := []OAuthFlow{
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id",
			ClientSecret: "{env.TEST_OAUTH_UNSET}"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id"},
		{FlowCommon: FlowCommon{Name: "x"}, Issuer: "http://idp.example.com", ClientID: "id",
			ClientSecret: "s"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id", ClientSecret: "s",
			Issuer: "https://idp.example.com"},
		{FlowCommon: FlowCommon{Name: "Bad Name"}, Preset: "google", ClientID: "id", ClientSecret: "s"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id", ClientSecret: "s",
			Timeout: -1},
	}
	for i, o := range bad {
		if err := o.Provision(ctx); err == nil {
			t.Errorf("config %d provisioned: %+v", i, o)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}
