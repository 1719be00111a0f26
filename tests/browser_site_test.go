package tests

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

// brandPages is the pages block of the browser tests' handlers: the brand
// shows in the screenshots in docs/pages.md.
const brandPages = `pages {
			title "Contoso Tea"
			bot_name "Contoso Helper"
			logo /logo.svg
			color 1f6f4a
		}`

// logoSVG is the shop's logo, served by the shop itself.
const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" ` +
	`viewBox="0 0 40 40">` +
	`<circle cx="20" cy="20" r="19" fill="#1f6f4a"/><path d="M12 22c0-6 6-11 16-11-1 9-6 15-12 15` +
	`-2 0-3-1-4-2" fill="#fff"/></svg>`

// shopSite is the site behind Caddy in the browser tests: a shop whose
// checkout task asks the user to confirm or cancel an order, and its logo.
func shopSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		var data struct{ Item string }
		_ = json.Unmarshal([]byte(r.Header.Get("Handoff-Data")), &data)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Checkout</title><h1>Your order: %s</h1>
<form method="post" action="/checkout/confirm"><button id="confirm">Confirm order</button></form>
<form method="post" action="/checkout/cancel"><button id="cancel">Cancel order</button></form>`,
			cmp.Or(data.Item, "tea"))
	})
	mux.HandleFunc("POST /checkout/confirm", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Handoff-Flow-Id") == "" {
			http.Error(w, "no open order", http.StatusBadRequest)
			return
		}
		result, _ := json.Marshal(map[string]string{"orderId": "order-7",
			"user": r.Header.Get("Handoff-User-Id")})
		w.Header().Set("Handoff-Complete", string(result))
	})
	mux.HandleFunc("POST /checkout/cancel", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Handoff-Complete", "failed:cancelled_by_user")
	})
	mux.HandleFunc("GET /logo.svg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		io.WriteString(w, logoSVG)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// shopEnv is Caddy with the site flow checkout in front of the shop.
type shopEnv struct {
	caddy *Caddy
	base  string
	bot   *botkit.Client
}

// newShopEnv starts the shop behind Caddy; extra goes into the bot_handoff
// block, and pages replaces brandPages if given.
func newShopEnv(t *testing.T, pages, extra string) *shopEnv {
	t.Helper()
	shop := shopSite(t)
	c := startCaddy(t, func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bot_handoff {
		link_key secret {env.HANDOFF_LINK_SECRET}
		store memory
		insecure_test_clock
		%s
		%s
		site checkout {
			to /checkout
			ttl 5m
		}
	}
	reverse_proxy %s
}
`, port, cmp.Or(pages, brandPages), extra, strings.TrimPrefix(shop.URL, "http://"))
	}, botEnv...)
	base := c.URL + "/handoff"
	return &shopEnv{caddy: c, base: base, bot: bot(t, base)}
}

// link signs a link to the checkout task for user.
func (s *shopEnv) link(t *testing.T, ref flow.Ref) string {
	t.Helper()
	link, err := s.bot.Link("checkout", ref, map[string]any{"item": "Green tea"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// number reads the magic number from the finish page the tab shows, and
// checks that the page shows it large, in groups of three, with what to do.
func (tb *tab) number() string {
	tb.t.Helper()
	type shown struct {
		Code     string   `json:"code"`
		Groups   []string `json:"groups"`
		Gap      float64  `json:"gap"`
		FontSize float64  `json:"fontSize"`
		Lines    int      `json:"lines"`
		Left     float64  `json:"left"`
		Right    float64  `json:"right"`
		Width    float64  `json:"width"`
	}
	s := eval[shown](tb, `(() => {
		const code = document.getElementById("code"), spans = [...code.querySelectorAll("span")];
		const r = code.getBoundingClientRect();
		return {code: code.dataset.code, groups: spans.map(s => s.textContent),
			gap: spans.length > 1 ? spans[1].getBoundingClientRect().left - spans[0].getBoundingClientRect().right : 0,
			fontSize: parseFloat(getComputedStyle(code).fontSize),
			lines: new Set(spans.map(s => Math.round(s.getBoundingClientRect().top))).size,
			left: r.left, right: r.right, width: document.documentElement.clientWidth};
	})()`)
	if strings.Join(s.Groups, "") != s.Code || len(s.Code) < 6 {
		tb.t.Fatalf("number %q shown as %q", s.Code, s.Groups)
	}
	for _, g := range s.Groups {
		if len(g) != 3 {
			tb.t.Errorf("groups %q; want groups of three", s.Groups)
		}
	}
	if s.Gap < 8 {
		tb.t.Errorf("groups %.1fpx apart; want a visible gap", s.Gap)
	}
	if s.FontSize < 24 {
		tb.t.Errorf("number in %.0fpx type; want it large", s.FontSize)
	}
	if s.Lines != 1 {
		tb.t.Errorf("number on %d lines; want one", s.Lines)
	}
	if s.Left < 0 || s.Right > s.Width {
		tb.t.Errorf("number from %.0f to %.0fpx, outside the %.0fpx viewport", s.Left, s.Right, s.Width)
	}
	return s.Code
}

func TestBrowserSiteFlow(t *testing.T) {
	s := newShopEnv(t, "", "")
	alice, ctx := refFor("alice"), context.Background()
	link := s.link(t, alice)
	tb := newTab(t)

	// The link shows what it is for, and waits for a click.
	resp := tb.open(link)
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Continue to your task"})
	if got := tb.text("main"); !strings.Contains(got, "Your chat with Contoso Helper") {
		t.Errorf("continue page: %q", got)
	}
	if got := tb.text("header"); got != "Contoso Tea" {
		t.Errorf("header %q; want the brand's title", got)
	}
	if !eval[bool](tb, `document.querySelector("header img").naturalWidth > 0`) {
		t.Error("the logo did not load")
	}
	tb.shot("continue-site")

	// Continue leads to the shop's task; confirming it shows the number.
	resp = tb.click("main button")
	if resp.Status != http.StatusOK || tb.url().Path != "/checkout" ||
		!strings.Contains(tb.text("h1"), "Green tea") {
		t.Fatalf("task page: %d %s %q", resp.Status, tb.url(), tb.text("h1"))
	}
	resp = tb.click("#confirm")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "You're done"})
	code := tb.number()
	if got := tb.text("#what"); got != "Paste this number into your chat with Contoso Helper:" {
		t.Errorf("instructions %q", got)
	}
	tb.shot("finish")

	// Dark mode and a phone: still readable, and no sideways scrolling.
	tb.darkMode(true)
	tb.checkLook(pageWant{})
	tb.shot("finish-dark")
	tb.darkMode(false)
	tb.phone()
	tb.checkLook(pageWant{})
	tb.number()
	tb.shot("finish-phone")

	// The copy button puts the digits on the clipboard.
	tb.allowClipboard(s.caddy.URL)
	tb.do(chromedp.Click(chromedp.CSS("#copy"), chromedp.NodeVisible))
	copied := eval[string](tb, `navigator.clipboard.readText()`)
	if copied != code || tb.text("#copy") != "Copied" || tb.text("#status") != "Copied" {
		t.Errorf("copied %q, button %q, status %q; want %q", copied, tb.text("#copy"),
			tb.text("#status"), code)
	}

	// The same browser opening the link again is not shown the number twice.
	tb.open(link)
	resp = tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusOK, heading: "Number already shown"})
	tb.shot("shown")

	// The bot verifies what was copied; the flow is then finished.
	res, err := s.bot.Verify(ctx, alice.Key(), copied)
	if err != nil || res.Status != flow.StatusVerified ||
		!strings.Contains(string(res.Result), "order-7") {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	tb.open(link)
	resp = tb.click("main button")
	tb.checkPage(resp, pageWant{status: http.StatusConflict, heading: "Already finished"})
	tb.shot("finished")

	// Another browser cannot use the link.
	other := newTab(t)
	other.open(link)
	resp = other.click("main button")
	other.checkPage(resp, pageWant{status: http.StatusConflict, heading: "This link was already used"})
	other.shot("link-used")
}
