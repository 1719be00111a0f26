package flow

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pageKinds are the kinds of page the engine shows: message pages by
// status and by error class, and the pages with their own template.
func pageKinds() []string {
	kinds := []string{"shown", "done", "pending", "in_progress", "declined", "cancelled", "failed",
		"expired", "superseded", "finished", "not_found", "bad_request", "busy", "unavailable",
		"error", "finish", "continue.site", "continue.oauth", "continue.payment"}
	for _, c := range errorClasses {
		kinds = append(kinds, c.kind)
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

func TestCatalogIsComplete(t *testing.T) {
	for _, kind := range pageKinds() {
		for _, part := range []string{"heading", "message"} {
			if lookup("en", kind+"."+part) == "" {
				t.Errorf("no English text for %s.%s", kind, part)
			}
		}
	}

	placeholder := regexp.MustCompile(`\{[a-z]+\}`)
	for _, lang := range languages {
		for key, en := range catalog["en"] {
			s, ok := catalog[lang][key]
			if !ok {
				t.Errorf("%s: no text for %q", lang, key)
				continue
			}
			if strings.Contains(en, "{bot}") != strings.Contains(s, "{bot}") {
				t.Errorf("%s: %q names the bot differently than English: %q", lang, key, s)
			}
			for _, p := range placeholder.FindAllString(s, -1) {
				if p != "{bot}" && p != "{minutes}" && p != "{n}" && p != "{user}" {
					t.Errorf("%s: %q has an unknown placeholder %s", lang, key, p)
				}
			}
		}
		for key := range catalog[lang] {
			if _, ok := catalog["en"][key]; !ok {
				t.Errorf("%s: %q has no English original", lang, key)
			}
		}
	}
}

func TestPageLanguageFromAcceptLanguage(t *testing.T) {
	cases := map[string]string{
		"":                             "en",
		"*":                            "en",
		"en-GB,en;q=0.9":               "en",
		"de-CH,de;q=0.9,en;q=0.8":      "de",
		"fr-CA":                        "fr",
		"es-ES,es;q=0.9":               "en",
		"es-ES,es;q=0.9,fr;q=0.5":      "fr",
		"da, en-gb;q=0.8, en;q=0.7":    "en",
		"nonsense;;q=x":                "en",
		"de;q=0.1,fr;q=0.2,en;q=0.05":  "fr",
		"pt-BR,pt;q=0.9,de-AT;q=0.8":   "de",
		"zh-Hant-TW,zh;q=0.9,fr;q=0.1": "fr",
	}
	for header, want := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", header)
		if got := pageLang(r); got != want {
			t.Errorf("Accept-Language %q: got %q; want %q", header, got, want)
		}
	}
}

func TestContrastRatio(t *testing.T) {
	cases := []struct {
		a, b string
		want float64
	}{
		{"#000", "#fff", 21},
		{"#fff", "#fff", 1},
		{"#777777", "#ffffff", 4.48},
		{"#0b57d0", "#fff", 6.38},
	}
	for _, c := range cases {
		got, err := ContrastRatio(c.a, c.b)
		if err != nil || got < c.want-0.01 || got > c.want+0.01 {
			t.Errorf("ContrastRatio(%s, %s) = %.2f, %v; want %.2f", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := ContrastRatio("red", "#fff"); err == nil {
		t.Error("a colour name was taken")
	}
}

func TestTextOnAnyBrandColourIsReadable(t *testing.T) {
	for r := 0; r < 256; r += 15 {
		for g := 0; g < 256; g += 15 {
			for b := 0; b < 256; b += 15 {
				brand := Brand{Color: fmt.Sprintf("#%02x%02x%02x", r, g, b)}
				ratio, err := ContrastRatio(brand.Color, brand.OnColor())
				if err != nil || ratio < 4.5 {
					t.Fatalf("text %s on %s: contrast %.2f, %v; want at least 4.5",
						brand.OnColor(), brand.Color, ratio, err)
				}
			}
		}
	}
	if got := (Brand{Color: DefaultColor}).OnColor(); got != inkLight {
		t.Errorf("text on the default colour is %s; want white", got)
	}
	if got := (Brand{Color: "#ffd33d"}).OnColor(); got != inkDark {
		t.Errorf("text on yellow is %s; want black", got)
	}
}

func TestBrandChecks(t *testing.T) {
	bad := []Brand{
		{Color: "blue"}, {Color: "#12345"}, {Color: "#0b57d0; x"},
		{LogoURL: "http://cdn.example.com/logo.png"}, {LogoURL: "javascript:alert(1)"},
		{LogoURL: "logo.png"}, {LogoURL: "//cdn.example.com/logo.png"},
	}
	for _, b := range bad {
		if _, err := NewPages(b, nil); err == nil {
			t.Errorf("brand %+v was taken", b)
		}
	}
	p, err := NewPages(Brand{LogoURL: "https://cdn.example.com/logo.png"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	csp := p.csp(PageFinish, "n")
	if !strings.Contains(csp, "img-src 'self' https://cdn.example.com;") {
		t.Errorf("CSP does not allow the logo's origin: %s", csp)
	}
}

// renderPage renders a page of kind for a browser speaking lang.
func renderPage(t *testing.T, p *Pages, name, kind, lang string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept-Language", lang)
	d := newPageData(p.brand, pageLang(r), "shop.example.com", 10)
	d.setKind(kind)
	if name == PageFinish {
		d.setCode("042917")
	}
	if name == PageContinue {
		d.Form = &Form{Action: "/handoff/start", Token: "tok", Button: d.text(kind + ".button")}
	}
	w := httptest.NewRecorder()
	if err := p.render(w, http.StatusOK, name, d, "NONCE123"); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestFinishPage(t *testing.T) {
	p, err := NewPages(Brand{BotName: "Contoso Helper", Color: "#ffd33d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := renderPage(t, p, PageFinish, "finish.oauth", "en")
	body := w.Body.String()
	for _, want := range []string{
		`<html lang="en">`,
		"<h1>You&#39;re signed in</h1>",
		"Paste this number into your chat with Contoso Helper:",
		`data-code="042917"`,
		`<span>042</span><span>917</span>`,
		`<span class="sr">0 4 2, 9 1 7</span>`,
		"expires in 10\u00a0minutes",
		"--on-brand: #000000",
		`<style nonce="NONCE123">`,
		`<script nonce="NONCE123">`,
		"<title>You&#39;re signed in · shop.example.com</title>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("finish page lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "<h1"); n != 1 {
		t.Errorf("%d h1 elements; want 1", n)
	}

	h := w.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'nonce-NONCE123'",
		"style-src 'nonce-NONCE123'", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" ||
		h.Get("Content-Language") != "en" || h.Get("Vary") != "Accept-Language" {
		t.Errorf("headers: %v", h)
	}
}

func TestPagesInEveryLanguage(t *testing.T) {
	p := DefaultPages()
	want := map[string]string{
		"en": "Paste this number into your chat with the bot:",
		"de": "Fügen Sie diesen Code in Ihren Chat mit dem Bot ein:",
		"fr": "Collez ce code dans votre conversation avec le bot\u00a0:",
	}
	for lang, text := range want {
		body := renderPage(t, p, PageFinish, "finish", lang).Body.String()
		if !strings.Contains(body, `<html lang="`+lang+`">`) || !strings.Contains(body, text) {
			t.Errorf("%s finish page lacks %q:\n%s", lang, text, body)
		}
	}
	body := renderPage(t, p, PageMessage, "link_used", "de").Body.String()
	if !strings.Contains(body, "<h1>Dieser Link wurde bereits verwendet</h1>") {
		t.Errorf("German message page:\n%s", body)
	}
}

func TestCodeMinutes(t *testing.T) {
	cases := map[time.Duration]string{
		30 * time.Second: "1\u00a0minute", time.Minute: "1\u00a0minute",
		90 * time.Second: "2\u00a0minutes", 10 * time.Minute: "10\u00a0minutes",
	}
	for ttl, want := range cases {
		d := newPageData(Brand{}, "en", "", codeMinutes(ttl))
		d.setKind("finish")
		if !strings.Contains(d.Hint, "expires in "+want+".") {
			t.Errorf("ttl %v: hint %q; want %q", ttl, d.Hint, want)
		}
	}
}

// Renders in several languages at once must not mix: each page is in the
// language its browser asked for.
func TestConcurrentPagesKeepTheirLanguage(t *testing.T) {
	p := DefaultPages()
	var wg sync.WaitGroup
	for i := range 40 {
		lang, want := "en", "This link has expired"
		if i%2 == 1 {
			lang, want = "de", "Dieser Link ist abgelaufen"
		}
		wg.Go(func() {
			body := renderPage(t, p, PageMessage, "link_expired", lang).Body.String()
			if !strings.Contains(body, want) {
				t.Errorf("%s page lacks %q", lang, want)
			}
		})
	}
	wg.Wait()
}

func TestOperatorTemplates(t *testing.T) {
	overrides := map[string]string{
		// Only a content block: shown in the built-in layout.
		PageFinish: `{{define "content"}}<h1>Your code</h1><p class="mine">{{.CodeGrouped}}` +
			` for {{.Brand.BotName}}, {{.T "finish.copy"}}</p>{{end}}`,
		// A whole page, with its own style under the nonce.
		PageMessage: `<!doctype html><html lang="{{.Lang}}"><style nonce="{{.Nonce}}">` +
			`h1{color:red}</style><h1>{{.Heading}}</h1><p>{{.Hint}}</p></html>`,
	}
	p, err := NewPages(Brand{BotName: "Helper"}, overrides)
	if err != nil {
		t.Fatal(err)
	}

	body := renderPage(t, p, PageFinish, "finish", "de").Body.String()
	for _, want := range []string{`<p class="mine">042 917 for Helper, Code kopieren</p>`,
		`<style nonce="NONCE123">`, `<html lang="de">`} {
		if !strings.Contains(body, want) {
			t.Errorf("content-only template lacks %q:\n%s", want, body)
		}
	}
	body = renderPage(t, p, PageMessage, "declined", "en").Body.String()
	want := `<!doctype html><html lang="en"><style nonce="NONCE123">h1{color:red}</style>` +
		`<h1>Sign-in was cancelled</h1><p>We let Helper know. You can ask it to try again.</p></html>`
	if body != want {
		t.Errorf("whole-page template:\n got %s\nwant %s", body, want)
	}
	body = renderPage(t, p, PageContinue, "continue.site", "en").Body.String()
	if !strings.Contains(body, `<button type="submit">Continue</button>`) {
		t.Errorf("the built-in continue page changed:\n%s", body)
	}
}

func TestOperatorTemplateErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"unknown page":    {"welcome": "<p>hi</p>"},
		"syntax":          {PageFinish: "{{if}}"},
		"unknown field":   {PageFinish: "<p>{{.Number}}</p>"},
		"unknown key":     {PageMessage: `{{define "content"}}{{.T}}{{end}}`},
		"no content":      {PageMessage: `{{define "body"}}x{{end}}`},
		"empty":           {PageMessage: "  \n"},
		"unknown nesting": {PageMessage: `{{template "missing" .}}`},
	}
	for name, overrides := range cases {
		if _, err := NewPages(Brand{}, overrides); err == nil {
			t.Errorf("%s: template was taken", name)
		}
	}
}
