package tests

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// pageWant is what a page of the handler must be.
type pageWant struct {
	status int
	// heading is in the page's one h1.
	heading string
	// lang is the page's language. Default: en.
	lang string
	// custom marks an operator's own page, which need not have the built-in
	// page's landmarks.
	custom bool
}

// audit is what a page tells about itself, measured in the browser.
type audit struct {
	Lang     string   `json:"lang"`
	Headings []string `json:"headings"`
	Main     bool     `json:"main"`
	Banner   bool     `json:"banner"`
	// Overflow is how far the page is wider than the viewport, in CSS
	// pixels: more than 0 means the user must scroll sideways.
	Overflow float64 `json:"overflow"`
	// LowContrast lists visible text under 4.5:1 against its background.
	LowContrast []string `json:"lowContrast"`
	// Unnamed lists controls with no accessible name.
	Unnamed []string `json:"unnamed"`
}

// auditJS measures the page: landmarks, headings, sideways overflow, the
// WCAG contrast of every visible text, and controls without a name.
const auditJS = `(() => {
  const rgba = s => { const m = s.match(/[\d.]+/g).map(Number); return m.length > 3 ? m : m.concat(1); };
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const visible = el => el.getClientRects().length > 0 && !el.closest(".sr") &&
    getComputedStyle(el).visibility !== "hidden";
  const out = {
    lang: document.documentElement.lang,
    headings: [...document.querySelectorAll("h1")].map(h => h.innerText.trim()),
    main: document.querySelectorAll("main").length === 1,
    banner: [...document.querySelectorAll("header")].some(h => !h.closest("main, article, section")),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    lowContrast: [], unnamed: [],
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode()); ) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !visible(el)) continue;
    const a = lum(rgba(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.lowContrast.push(n.textContent.trim().slice(0, 40) + ": " + ratio.toFixed(2));
  }
  for (const el of document.querySelectorAll("button, input:not([type=hidden]), select, textarea, a[href]")) {
    const named = (el.innerText || "").trim() || el.getAttribute("aria-label") ||
      (el.labels && el.labels.length > 0);
    if (visible(el) && !named) out.unnamed.push(el.outerHTML.slice(0, 60));
  }
  return out;
})()`

// checkPage checks the page the tab shows, answered with resp: its status,
// heading and language, its accessibility and look, that the browser
// logged no CSP violation or error, and that the page loaded nothing from
// another origin.
func (tb *tab) checkPage(resp *network.Response, want pageWant) audit {
	tb.t.Helper()
	if resp == nil || int(resp.Status) != want.status {
		tb.t.Errorf("status %v; want %d", statusOf(resp), want.status)
	}
	a := tb.checkLook(want)
	if len(a.Headings) != 1 || !strings.Contains(a.Headings[0], want.heading) {
		tb.t.Errorf("h1 elements %q; want one with %q", a.Headings, want.heading)
	}
	tb.checkQuiet()
	tb.checkFocus()
	return a
}

// checkLook checks what can change with the viewport and colour scheme:
// language, landmarks, contrast, sideways scrolling and control names.
func (tb *tab) checkLook(want pageWant) audit {
	tb.t.Helper()
	a := eval[audit](tb, auditJS)
	if lang := cmp.Or(want.lang, "en"); a.Lang != lang {
		tb.t.Errorf("lang %q; want %q", a.Lang, lang)
	}
	if !want.custom && (!a.Main || !a.Banner) {
		tb.t.Errorf("landmarks: main %v, banner %v; want both", a.Main, a.Banner)
	}
	if a.Overflow > 0 {
		tb.t.Errorf("the page is %.0fpx wider than the viewport", a.Overflow)
	}
	if len(a.LowContrast) > 0 {
		tb.t.Errorf("text under 4.5:1 contrast: %q", a.LowContrast)
	}
	if len(a.Unnamed) > 0 {
		tb.t.Errorf("controls without a name: %q", a.Unnamed)
	}
	return a
}

// checkQuiet checks that since the page began to load, the browser logged
// no error (a CSP violation is one) and the page requested nothing from an
// origin other than its own.
func (tb *tab) checkQuiet() {
	tb.t.Helper()
	origin := tb.url()
	tb.mu.Lock()
	problems, requests := slices.Clone(tb.problems), slices.Clone(tb.requests)
	tb.mu.Unlock()
	if len(problems) > 0 {
		tb.t.Errorf("the browser logged problems on %s: %q", origin.Path, problems)
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != origin.Scheme || u.Host != origin.Host {
			tb.t.Errorf("%s requested %s, outside its origin", origin.Path, r)
		}
	}
}

// checkFocus tabs to the first control of the page, if it has one, and
// checks that the keyboard focus is plainly visible.
func (tb *tab) checkFocus() {
	tb.t.Helper()
	controls := `[...document.querySelectorAll("button, a[href]")].some(e => e.getClientRects().length)`
	if !eval[bool](tb, controls) {
		return
	}
	tb.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`),
		chromedp.KeyEvent(kb.Tab))
	style := eval[[]string](tb, `(() => { const s = getComputedStyle(document.activeElement);
		return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; })()`)
	if len(style) != 3 {
		tb.t.Fatalf("reading the focus style: %q", style)
	}
	width, _ := strconv.ParseFloat(strings.TrimSuffix(style[2], "px"), 64)
	if style[0] == "BODY" || style[1] == "none" || width < 2 {
		tb.t.Errorf("keyboard focus: element, outline style and width %q; want a visible outline", style)
	}
	tb.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
}

func statusOf(resp *network.Response) any {
	if resp == nil {
		return "none"
	}
	return resp.Status
}
