package caddymodule

import "testing"

// FuzzCaddyfile feeds arbitrary bot_handoff blocks to the Caddyfile adapter:
// whatever the input, adapting must end in a config or an error, never a
// panic.
func FuzzCaddyfile(f *testing.F) {
	for _, s := range []string{
		"link_key secret x\nsite a {\nto /a\n}",
		"store redis {\n}",
		"pages {\ntemplate\n}",
		"payment shop stripe",
		"signal webhook",
		"magic_number {\ndigits x\n}",
		"finish proxy",
		"{\n}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, _, _ = adapt("example.com {\n\tbot_handoff {\n" + body + "\n\t}\n}\n")
	})
}
