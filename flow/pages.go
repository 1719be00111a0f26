package flow

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

//go:embed pages/*.html
var pageFiles embed.FS

// Page names. Each is a template defining "content", rendered inside
// "layout"; an operator's file for a page replaces both.
const (
	PageContinue = "continue"
	PageFinish   = "finish"
	PageMessage  = "message"
)

// Brand is how the pages present the operator.
type Brand struct {
	// Title names the site in the page header and title. Default: "Sign-in".
	Title string
	// BotName names the bot in the instructions. Default: "the bot".
	BotName string
	// LogoURL is an image shown in the header; same origin or https.
	LogoURL string
	// Color is the accent colour as #rgb or #rrggbb. Default: #0b57d0.
	Color string
}

var colorPattern = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}){1,2}$`)

// Pages renders the pages a user sees, in the language the browser prefers.
type Pages struct {
	brand   Brand
	imgSrc  string
	sets    map[string]*template.Template
	matcher language.Matcher
	tags    []string
}

// DefaultPages returns the built-in pages with the default brand.
func DefaultPages() *Pages {
	p, err := NewPages(Brand{}, nil)
	if err != nil {
		panic(fmt.Sprintf("flow: built-in pages: %v", err)) // embedded files are tested
	}
	return p
}

// NewPages returns pages with brand, where overrides maps page names to the
// operator's template text replacing the built-in page. A page template
// receives PageData.
func NewPages(brand Brand, overrides map[string]string) (*Pages, error) {
	if err := brand.fill(); err != nil {
		return nil, err
	}
	p := &Pages{brand: brand, sets: map[string]*template.Template{}, imgSrc: "'self'"}
	if o := logoOrigin(brand.LogoURL); o != "" {
		p.imgSrc += " " + o
	}

	for _, name := range []string{PageContinue, PageFinish, PageMessage} {
		t := template.New(name).Funcs(template.FuncMap{"T": func(string) string { return "" }})
		var err error
		if text, ok := overrides[name]; ok {
			t, err = t.Parse(text)
		} else {
			t, err = t.ParseFS(pageFiles, "pages/layout.html", "pages/"+name+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s page: %w", name, err)
		}
		p.sets[name] = t
	}
	for name := range overrides {
		if p.sets[name] == nil {
			return nil, fmt.Errorf("unknown page %q", name)
		}
	}

	tags := make([]language.Tag, 0, len(catalog))
	for _, lang := range languages {
		tags = append(tags, language.MustParse(lang))
		p.tags = append(p.tags, lang)
	}
	p.matcher = language.NewMatcher(tags)
	return p, nil
}

func (b *Brand) fill() error {
	b.Title = or(b.Title, "Sign-in")
	b.BotName = or(b.BotName, "")
	b.Color = or(b.Color, "#0b57d0")
	if !colorPattern.MatchString(b.Color) {
		return fmt.Errorf("brand colour %q must be #rgb or #rrggbb", b.Color)
	}
	if b.LogoURL != "" {
		u, err := url.Parse(b.LogoURL)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "" && strings.HasPrefix(u.Path, "/"))) {
			return fmt.Errorf("logo URL %q must be https or a path on this site", b.LogoURL)
		}
	}
	return nil
}

func logoOrigin(logo string) string {
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	return "https://" + u.Host
}

// PageData is what a page template receives.
type PageData struct {
	// Lang is the page's language tag, like "en" or "de".
	Lang string
	// Kind names the message for message pages: "link_expired",
	// "declined" and the like.
	Kind    string
	Heading string
	Message string
	Hint    string
	Brand   Brand
	// Code is the magic number on the finish page; CodeGrouped is the same
	// number in groups of three for reading.
	Code        string
	CodeGrouped string
	// Minutes is how long the number lives.
	Minutes int
	// Flow is the flow's name and FlowKind its kind, where known.
	Flow     string
	FlowKind string
	// Form is the continue page's form.
	Form *Form
	// Refresh asks the browser to reload after this many seconds.
	Refresh int
	// Nonce authorises the page's inline style and script under its CSP.
	Nonce string

	lang string
}

// T translates a catalog key into the page's language.
func (d *PageData) T(key string) string { return d.text(key) }

func (d *PageData) text(key string) string {
	s, ok := catalog[d.lang][key]
	if !ok {
		s = catalog["en"][key]
	}
	return strings.NewReplacer("{bot}", d.Brand.BotName,
		"{minutes}", strconv.Itoa(d.Minutes)).Replace(s)
}

// Form is the continue page's form.
type Form struct {
	Action string
	Token  string
	Button string
}

// lang picks the page language from the Accept-Language header.
func (p *Pages) lang(r *http.Request) string {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, _ := p.matcher.Match(tags...)
	return p.tags[i]
}

// render writes page name with status, after the security headers every page
// carries: no caching, no referrer, no framing, a strict CSP with a nonce.
func (p *Pages) render(w http.ResponseWriter, status int, name string, d *PageData, nonce string) error {
	d.Brand, d.Nonce = p.brand, nonce
	if d.Brand.BotName == "" {
		d.Brand.BotName = d.text("bot")
	}

	var buf bytes.Buffer
	if err := p.sets[name].Funcs(template.FuncMap{"T": d.T}).ExecuteTemplate(&buf, p.entry(name), d); err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}

	h := w.Header()
	pageHeaders(h)
	csp := "default-src 'none'; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce +
		"'; img-src " + p.imgSrc + "; frame-ancestors 'none'; base-uri 'none'"
	if name != PageContinue {
		// The continue form's answer redirects to the provider, which
		// form-action would block; every other page has no form.
		csp += "; form-action 'none'"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := io.Copy(w, &buf)
	return err
}

// entry is the template to execute: the layout of a built-in page, or the
// operator's whole file.
func (p *Pages) entry(name string) string {
	if p.sets[name].Lookup("layout") != nil {
		return "layout"
	}
	return name
}

// pageHeaders sets the headers every answer of the handler carries.
func pageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}
