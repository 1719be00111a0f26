package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden files with the adapted JSON")

// TestCaddyfileAdapt adapts each testdata/caddyfile/*.caddyfiletest file: a
// Caddyfile, a line of dashes, and the JSON it must adapt to.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/caddyfile/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}

			got, _, err := adapt(input)
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			var wantBuf, gotBuf bytes.Buffer
			if err := json.Indent(&wantBuf, []byte(strings.TrimSpace(want)), "", "\t"); err != nil && !*update {
				t.Fatalf("golden JSON: %v", err)
			}
			_ = json.Indent(&gotBuf, got, "", "\t")
			if *update {
				out := input + "\n----------\n" + gotBuf.String() + "\n"
				if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if gotBuf.String() != wantBuf.String() {
				t.Errorf("adapted JSON differs;\ngot:\n%s\nwant:\n%s", gotBuf.String(), wantBuf.String())
			}
		})
	}
}

func adapt(caddyfile string) ([]byte, []caddyconfig.Warning, error) {
	return caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
}

// TestCaddyfileErrors checks that bad configurations are refused with a
// message naming the problem and its line.
func TestCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unknown subdirective", "bogus 1", `unrecognized bot_handoff subdirective "bogus"`},
		{"repeated subdirective", "prefix /a\n\t\tprefix /b", `subdirective "prefix" given twice`},
		{"bad deliver", "deliver everything", "deliver must be status or full"},
		{"bad duration", "max_link_ttl soon", `bad duration "soon"`},
		{"link key kind", "link_key password x", "link_key must be secret or public_key"},
		{"link key id", "link_key secret x kid 1", "expected id KID"},
		{"unknown store", "store floppy", "unknown module http.handlers.bot_handoff.stores.floppy"},
		{"shared with an argument", "store storage {\n\t\t\tshared yes\n\t\t}", "wrong argument count"},
		{"unknown flow kind", "payment shop paypal {\n\t\t}", "unknown module"},
		{"site unknown option", "site checkout {\n\t\t\tgo /x\n\t\t}", `unrecognized subdirective "go"`},
		{"site repeated option", "site checkout {\n\t\t\tto /x\n\t\t\tto /y\n\t\t}", `subdirective "to" given twice`},
		{"site bad enabled", "site checkout {\n\t\t\tenabled maybe\n\t\t}", "enabled must be true or false"},
		{"finish", "finish somewhere", "finish takes builtin"},
		{"magic number option", "magic_number {\n\t\t\tlength 6\n\t\t}", `unrecognized subdirective "length"`},
		{"webhook option", "signal webhook https://x {\n\t\t\tkey x\n\t\t}", `unrecognized subdirective "key"`},
		{"pages option", "pages {\n\t\t\tfont x\n\t\t}", `unrecognized pages subdirective "font"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			input := "example.com {\n\tbot_handoff {\n\t\t" + c.body + "\n\t}\n}\n"
			_, _, err := adapt(input)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error does not name the line: %v", err)
			}
		})
	}
}
