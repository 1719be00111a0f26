package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestXcaddyBuild builds Caddy with xcaddy v0.4.5 from this module, as
// xcaddy.md tells operators to, and checks the binary has the module and
// accepts the example configuration.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a whole Caddy")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "run", "github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5",
		"build", "v2.11.9",
		"--with", "github.com/bothandoff/caddy-bothandoff@v0.0.0="+root,
		"--output", out)
	cmd.Dir = t.TempDir()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy build: %v\n%s", err, tail(string(b), 40))
	}

	mods, err := exec.Command(out, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"http.handlers.bot_handoff", "http.handlers.bot_handoff.flows.site",
		"http.handlers.bot_handoff.stores.storage", "http.handlers.bot_handoff.signals.webhook"} {
		if !strings.Contains(string(mods), want+"\n") {
			t.Errorf("module %s missing from:\n%s", want, mods)
		}
	}

	adapt := exec.Command(out, "adapt", "--config", filepath.Join(root, "Caddyfile.example"))
	adapt.Env = append(os.Environ(), "HANDOFF_LINK_SECRET="+linkSecret)
	if b, err := adapt.CombinedOutput(); err != nil || !strings.Contains(string(b), "bot_handoff") {
		t.Errorf("adapting Caddyfile.example: %v\n%s", err, b)
	}
	if b, err := exec.Command(out, "handoff", "keygen").CombinedOutput(); err != nil || len(strings.TrimSpace(string(b))) != 43 {
		t.Errorf("caddy handoff keygen: %v: %s", err, b)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
