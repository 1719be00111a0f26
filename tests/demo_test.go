package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs Caddyfile.example as the README's first command does, and
// follows the README: make a link with caddy handoff link, open it, confirm
// the order, and check the number with caddy handoff verify.
func TestDemo(t *testing.T) {
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("..")
	c := startCaddyRaw(t, func(c *Caddy) string {
		return strings.NewReplacer(
			"http://localhost:8080", fmt.Sprintf("http://127.0.0.1:%d", c.Port),
			"admin localhost:2019", fmt.Sprintf("admin 127.0.0.1:%d", c.Admin),
			"storage file_system .demo/data", "storage file_system "+filepath.Join(c.Dir, "data"),
			"root * demo", "root * "+filepath.Join(root, "demo"),
		).Replace(string(example))
	}, botEnv...)

	base := c.URL + "/handoff"
	conv := []string{"--url", base, "--channel", "demo", "--conversation", "demo-chat", "--user", "alice"}
	link, err := Handoff(t, botEnv, append([]string{"link", "--flow", "checkout",
		"--data", `{"item":"Green tea","quantity":2}`}, conv...)...)
	if err != nil {
		t.Fatalf("caddy handoff link: %v: %s", err, link)
	}

	b := newBrowser(t)
	resp, body := b.open(link)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("opening the link: %d: %s", resp.StatusCode, body)
	}
	b.client.CheckRedirect = nil // the task path redirects to its directory
	resp, body = b.get(c.URL + "/checkout")
	if !strings.Contains(body, "Green tea") || !strings.Contains(body, "Confirm order") {
		t.Fatalf("checkout page does not show the order: %d: %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/checkout/confirm", nil)
	resp, body = b.do(req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Contoso Helper") {
		t.Fatalf("finish page: %d: %s", resp.StatusCode, body)
	}
	code := numberOn(t, body)

	out, err := Handoff(t, botEnv, append([]string{"verify", "--code", code}, conv...)...)
	if err != nil || !strings.Contains(out, `"status": "verified"`) || !strings.Contains(out, "demo-") {
		t.Fatalf("caddy handoff verify: %v: %s", err, out)
	}
	out, err = Handoff(t, botEnv, append([]string{"status"}, conv...)...)
	if err != nil || !strings.Contains(out, `"verified"`) {
		t.Errorf("caddy handoff status: %v: %s", err, out)
	}

	// A new link, opened, then cancelled by the bot.
	link, _ = Handoff(t, botEnv, append([]string{"link", "--flow", "checkout"}, conv...)...)
	if resp, _ := newBrowser(t).open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("opening the second link: %d", resp.StatusCode)
	}
	out, err = Handoff(t, botEnv, append([]string{"cancel"}, conv...)...)
	if err != nil || !strings.Contains(out, `"cancelled"`) {
		t.Errorf("caddy handoff cancel: %v: %s", err, out)
	}
}
