package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFinishProxy shows the number on a page of the site, reached through
// the rest of the handler chain with the number in placeholders and a
// request header, never in a URL.
func TestFinishProxy(t *testing.T) {
	up := testSite(t)
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		finish proxy /done
		site checkout {
			to /checkout
		}
	}
	handle /done {
		request_header X-Grouped {http.handoff.magic_number_grouped}
		reverse_proxy %s {
			header_down Cache-Control "public, max-age=3600"
		}
	}
	reverse_proxy %s
}
`, port, strings.TrimPrefix(up.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))
	}, botEnv...)

	s := &siteEnv{caddy: c, base: c.URL + "/handoff", bot: bot(t, c.URL+"/handoff")}
	link, _ := s.bot.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	b := newBrowser(t)
	if resp, body := b.open(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d: %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/checkout/confirm", nil)
	resp, body := b.do(req)

	// The site's page got a GET for /done, the number in a header and in
	// the placeholder the Caddyfile put in another header.
	var seen struct {
		Path    string
		Headers map[string]string
	}
	if err := json.Unmarshal([]byte(body), &seen); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("site's finish page: %d: %s", resp.StatusCode, body)
	}
	code := seen.Headers["Handoff-Magic-Number"]
	if seen.Path != "/done" || !regexp.MustCompile(`^\d{6}$`).MatchString(code) ||
		strings.ReplaceAll(seen.Headers["X-Grouped"], " ", "") != code {
		t.Fatalf("site's finish page got %+v", seen)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("finish page headers: %v", resp.Header)
	}
	if _, err := s.bot.Verify(context.Background(), refFor("alice").Key(), code); err != nil {
		t.Errorf("verify the proxied page's number: %v", err)
	}
}

// TestFinishTemplate shows the number with the operator's template.
func TestFinishTemplate(t *testing.T) {
	up := testSite(t)
	tmpl := filepath.Join(t.TempDir(), "finish.html")
	content := `{{define "content"}}<h1>Thanks</h1><p>Your code is <output>{{.CodeGrouped}}</output>` +
		` <span data-code="{{.Code}}"></span></p>{{end}}`
	if err := os.WriteFile(tmpl, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		finish template %s
		site checkout {
			to /checkout
		}
	}
	reverse_proxy %s
}
`, port, tmpl, strings.TrimPrefix(up.URL, "http://"))
	}, botEnv...)

	s := &siteEnv{caddy: c, base: c.URL + "/handoff", bot: bot(t, c.URL+"/handoff")}
	link, _ := s.bot.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	code := s.finish(t, newBrowser(t), link)
	if _, err := s.bot.Verify(context.Background(), refFor("alice").Key(), code); err != nil {
		t.Errorf("verify the template's number: %v", err)
	}
}
