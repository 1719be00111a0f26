package caddymodule_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/bothandoff/caddy-bothandoff/caddymodule"
)

// adapt adapts a bot_handoff block and returns the handler's flows.
func adapt(t *testing.T, block string) ([]map[string]any, error) {
	t.Helper()
	cf := "example.com {\n\tbot_handoff {\n\t\tlink_key secret {env.X}\n" + block + "\t}\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Routes []struct {
								Handle []map[string]json.RawMessage `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, h := range srv.Routes[0].Handle[0].Routes[0].Handle {
			var flows []map[string]any
			if err := json.Unmarshal(h["flows"], &flows); err == nil && flows != nil {
				return flows, nil
			}
		}
	}
	t.Fatalf("no flows in %s", out)
	return nil, nil
}

func TestPaymentCaddyfile(t *testing.T) {
	flows, err := adapt(t, `		payment shop stripe {
			secret_key {env.STRIPE_SECRET_KEY}
			webhook_secret {file./run/whsec}
			api_url http://127.0.0.1:9/
			ttl 45m
		}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kind": "stripe", "name": "shop", "ttl": float64(45 * 60 * 1e9),
		"secret_key": "{env.STRIPE_SECRET_KEY}", "webhook_secret": "{file./run/whsec}",
		"api_url": "http://127.0.0.1:9/",
	}
	if len(flows) != 1 || len(flows[0]) != len(want) {
		t.Fatalf("flows = %v; want %v", flows, want)
	}
	for k, v := range want {
		if flows[0][k] != v {
			t.Errorf("%s = %v; want %v", k, flows[0][k], v)
		}
	}
}

func TestPaymentCaddyfileRefusals(t *testing.T) {
	cases := map[string]struct{ block, want string }{
		"unknown provider": {"\t\tpayment shop paypal {\n\t\t}\n", "unknown module"},
		"no provider":      {"\t\tpayment shop {\n\t\t}\n", "flow name and a provider"},
		"unknown option": {"\t\tpayment shop stripe {\n\t\t\tpublishable_key x\n\t\t}\n",
			`unrecognized subdirective "publishable_key"`},
		"repeated option": {"\t\tpayment shop stripe {\n\t\t\tsecret_key a\n\t\t\tsecret_key b\n\t\t}\n",
			`"secret_key" given twice`},
		"option without value": {"\t\tpayment shop stripe {\n\t\t\tapi_url\n\t\t}\n", "wrong argument count"},
		"bad ttl":              {"\t\tpayment shop stripe {\n\t\t\tttl soon\n\t\t}\n", "bad duration"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := adapt(t, c.block)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v; want an error with %q", err, c.want)
			}
		})
	}
}

func TestPaymentCaddyfileDisabled(t *testing.T) {
	flows, err := adapt(t, `		site checkout {
			to /checkout
		}
		payment shop stripe {
			enabled false
		}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || flows[0]["kind"] != "site" {
		t.Errorf("flows = %v; want only the site flow", flows)
	}
}
