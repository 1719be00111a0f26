package tests

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserErrorPages(t *testing.T) {
	s := newShopEnv(t, "", "")
	tb := newTab(t)

	resp := tb.open(s.base + "/nothing")
	tb.checkPage(resp, pageWant{status: http.StatusNotFound, heading: "Page not found"})
	tb.shot("not-found")

	resp = tb.open(s.base + "/finish?h=x")
	tb.checkPage(resp, pageWant{status: http.StatusBadRequest, heading: "Something is wrong"})

	// A link changed on the way, and one past its expiry.
	link := s.link(t, refFor("alice"))
	resp = tb.open(link[:len(link)-2] + "xx")
	tb.checkPage(resp, pageWant{status: http.StatusBadRequest, heading: "This link does not work"})
	tb.shot("link-invalid")
	old := bot(t, s.base)
	old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	stale, _ := old.Link("checkout", refFor("alice"), nil, 10*time.Minute)
	resp = tb.open(stale)
	tb.checkPage(resp, pageWant{status: http.StatusGone, heading: "This link has expired"})
	tb.shot("link-expired")

	// The shop fails the task.
	tb.open(link)
	tb.click("main button")
	resp = tb.click("#cancel")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "This did not work"})
	tb.shot("failed")

	// Bob's task is open; its finish page says so.
	link = s.link(t, refFor("bob"))
	tb = newTab(t)
	tb.open(link)
	tb.click("main button")
	cookie := tb.cookie(s.caddy.URL+"/checkout", "handoff_checkout")
	handle := cookie[:max(strings.LastIndexByte(cookie, '.'), 0)]
	resp = tb.open(s.base + "/finish?h=" + handle)
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Not finished yet"})
	tb.shot("in-progress")

	// Bob leaves it past the flow's 5 minutes; the link still works, the
	// task does not.
	advanceClock(t, s.base, 0, 6*time.Minute)
	tb.open(link)
	resp = tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusGone, heading: "This task has expired"})
	tb.shot("expired")
}

func TestBrowserPhoneLongNumberGerman(t *testing.T) {
	s := newShopEnv(t, "", "magic_number {\n\t\t\tdigits 12\n\t\t}")
	alice := refFor("alice")
	tb := newTab(t)
	tb.phone()
	tb.setLanguage("de-DE,de;q=0.9,en;q=0.5")

	resp := tb.open(s.link(t, alice))
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Weiter zur Aufgabe", lang: "de"})
	tb.shot("continue-site-de-phone")
	tb.click("main button")
	resp = tb.click("#confirm")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Geschafft", lang: "de"})
	code := tb.number()
	if len(code) != 12 {
		t.Fatalf("number %q; want 12 digits", code)
	}
	if got := tb.text("#what"); got != "Fügen Sie diesen Code in Ihren Chat mit Contoso Helper ein:" {
		t.Errorf("instructions %q", got)
	}
	tb.shot("finish-de-phone")

	// One tap selects the whole number, digits only.
	tb.do(chromedp.Tap(chromedp.CSS("#code span")))
	if got := eval[string](tb, `getSelection().toString()`); got != code {
		t.Errorf("a tap selected %q; want %q", got, code)
	}
	if _, err := s.bot.Verify(context.Background(), alice.Key(), code); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestBrowserWithoutJavaScript(t *testing.T) {
	s := newShopEnv(t, "", "")
	alice := refFor("alice")
	tb := newTab(t)
	tb.withoutJavaScript()

	tb.open(s.link(t, alice))
	tb.click("main button")
	resp := tb.click("#confirm")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "You're done"})
	code := tb.number()

	// No script, no copy button; a click on the number selects it all.
	if eval[bool](tb, `document.getElementById("copy").getClientRects().length > 0`) {
		t.Error("a copy button that cannot work is shown")
	}
	if got := tb.text("main"); !strings.Contains(got, "Tap or click the number to select it.") {
		t.Errorf("the page does not say how to copy the number: %q", got)
	}
	tb.do(chromedp.Click(chromedp.CSS("#code span")))
	if got := eval[string](tb, `getSelection().toString()`); got != code {
		t.Errorf("a click selected %q; want %q", got, code)
	}
	tb.shot("finish-no-javascript")
	if _, err := s.bot.Verify(context.Background(), alice.Key(), code); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// An operator's templates: the finish page's content inside the built-in
// layout, and a whole message page of its own, both under the CSP.
const (
	finishTemplate = `{{define "content"}}<h1>{{.Heading}}</h1>
<p>Order code for {{.Brand.BotName}}:</p>
<p class="mine" id="code" data-code="{{.Code}}">{{.CodeGrouped}}</p>
<p>{{.Hint}}</p>{{end}}`
	messageTemplate = `<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Heading}}</title>
<style nonce="{{.Nonce}}">h1 { color: rgb(153, 0, 0); }</style></head>
<body><main><h1>{{.Heading}}</h1><p>{{.Message}} {{.Hint}}</p></main></body></html>`
)

func TestBrowserOperatorTemplatesInFrench(t *testing.T) {
	dir := t.TempDir()
	finish, message := filepath.Join(dir, "finish.html"), filepath.Join(dir, "message.html")
	for file, text := range map[string]string{finish: finishTemplate, message: messageTemplate} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := newShopEnv(t, `pages {
			title "Contoso Tea"
			bot_name "Contoso Helper"
			logo /logo.svg
			color 1f6f4a
			template finish `+finish+`
			template message `+message+`
		}`, "")
	alice := refFor("alice")
	tb := newTab(t)
	tb.setLanguage("fr-FR,fr;q=0.9")

	resp := tb.open(s.link(t, alice))
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Continuer vers votre tâche",
		lang: "fr"})
	tb.shot("continue-site-fr")
	tb.click("main button")
	resp = tb.click("#confirm")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "C'est terminé", lang: "fr"})
	if got := tb.text("main"); !strings.Contains(got, "Order code for Contoso Helper:") {
		t.Errorf("the operator's finish page is not shown: %q", got)
	}
	code := eval[string](tb, `document.getElementById("code").dataset.code`)
	if _, err := s.bot.Verify(context.Background(), alice.Key(), code); err != nil {
		t.Errorf("verify: %v", err)
	}

	resp = tb.open(s.base + "/nothing")
	tb.checkPage(resp, pageWant{status: http.StatusNotFound, heading: "Page introuvable", lang: "fr",
		custom: true})
	h1 := eval[string](tb, `getComputedStyle(document.querySelector("h1")).color`)
	if got := h1; got != "rgb(153, 0, 0)" {
		t.Errorf("the template's own style did not apply: h1 is %s", got)
	}
}
