package flow

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"
)

//go:embed pages/*.html
var pageFiles embed.FS

// Page names. Each built-in page is a template defining "content", shown
// inside the built-in "layout".
const (
	PageContinue = "continue"
	PageFinish   = "finish"
	PageMessage  = "message"
)

// pageNames are the pages an operator may replace.
var pageNames = []string{PageContinue, PageFinish, PageMessage}

// Brand is how the pages present the operator.
type Brand struct {
	// Title names the site in the page header and the window title.
	// Default: the host name the browser used, like "example.com".
	Title string
	// BotName names the bot in the instructions, like "Contoso Helper".
	// Default: "the bot", in the page's language.
	BotName string
	// LogoURL is an image shown in the header: https, or a path on this
	// site.
	LogoURL string
	// Color is the accent colour of the buttons, the frame of the number and
	// the top border, as #rgb or #rrggbb. Text on it is white or black,
	// whichever reads better. Default: #0b57d0.
	Color string
}

// DefaultColor is the accent colour of the pages unless the operator gives
// one.
const DefaultColor = "#0b57d0"

// OnColor returns the colour of text on the brand colour: white or black,
// whichever contrasts more, so that it is readable on any brand colour.
func (b Brand) OnColor() string {
	c, err := parseColor(b.Color)
	if err != nil {
		return inkLight
	}
	return inkOn(c)
}

// Pages renders the pages a user sees, in the language the browser prefers.
type Pages struct {
	brand  Brand
	imgSrc string
	pages  map[string]*page
}

// page is one page's templates and the template to execute.
type page struct {
	t     *template.Template
	entry string
}

// DefaultPages returns the built-in pages with the default brand.
func DefaultPages() *Pages {
	p, err := NewPages(Brand{}, nil)
	if err != nil {
		panic(fmt.Sprintf("flow: built-in pages: %v", err)) // embedded files are tested
	}
	return p
}

// NewPages returns pages with brand. Overrides maps page names (continue,
// finish, message) to the operator's html/template text for that page. A
// text made only of {{define}} blocks is shown inside the built-in layout
// (define "content", and "layout" too to change it); any other text is the
// whole page. Templates receive *PageData. Each page is rendered once here
// with sample data, so a template that cannot render fails now rather than
// in front of a user.
func NewPages(brand Brand, overrides map[string]string) (*Pages, error) {
	if err := brand.fill(); err != nil {
		return nil, err
	}
	for name := range overrides {
		if !slices.Contains(pageNames, name) {
			return nil, fmt.Errorf("unknown page %q: pages are %s", name, strings.Join(pageNames, ", "))
		}
	}

	p := &Pages{brand: brand, pages: map[string]*page{}, imgSrc: "'self'"}
	if o := logoOrigin(brand.LogoURL); o != "" {
		p.imgSrc += " " + o
	}
	for _, name := range pageNames {
		text, override := overrides[name]
		pg, err := parsePage(name, text, override)
		if err != nil {
			return nil, fmt.Errorf("parsing %s page: %w", name, err)
		}
		if err := pg.t.ExecuteTemplate(io.Discard, pg.entry, p.sample(name)); err != nil {
			return nil, fmt.Errorf("trying %s page: %w", name, err)
		}
		p.pages[name] = pg
	}
	return p, nil
}

// parsePage parses a built-in page, or the operator's text for it, beside
// the built-in layout.
func parsePage(name, text string, override bool) (*page, error) {
	t, err := template.New(name).ParseFS(pageFiles, "pages/layout.html")
	if err != nil {
		return nil, err
	}
	if !override {
		_, err = t.ParseFS(pageFiles, "pages/"+name+".html")
		return &page{t: t, entry: "layout"}, err
	}

	if _, err := t.Parse(text); err != nil {
		return nil, err
	}
	if !onlyDefines(t.Lookup(name)) {
		return &page{t: t, entry: name}, nil
	}
	if t.Lookup("content") == nil {
		return nil, fmt.Errorf("the template neither is a page nor defines \"content\"")
	}
	return &page{t: t, entry: "layout"}, nil
}

// onlyDefines reports whether a template has no text of its own beside its
// {{define}} blocks.
func onlyDefines(t *template.Template) bool {
	return t == nil || t.Tree == nil || parse.IsEmptyTree(t.Tree.Root)
}

func (b *Brand) fill() error {
	b.Color = or(b.Color, DefaultColor)
	if _, err := parseColor(b.Color); err != nil {
		return fmt.Errorf("brand: %w", err)
	}
	if b.LogoURL != "" {
		u, err := url.Parse(b.LogoURL)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "" && u.Host == "" &&
			strings.HasPrefix(u.Path, "/"))) {
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

// sample returns the data a page is tried with when it is loaded.
func (p *Pages) sample(name string) *PageData {
	d := newPageData(p.brand, languages[0], "example.com", 10)
	d.setKind("error")
	d.Nonce = "sample"
	switch name {
	case PageContinue:
		d.setKind("continue." + KindSite)
		d.Flow, d.FlowKind = "sample", KindSite
		d.Form = &Form{Action: "/handoff/start", Token: "sample", Button: d.text("continue.site.button")}
	case PageFinish:
		d.setKind("finish")
		d.Flow, d.FlowKind = "sample", KindSite
		d.setCode("123456")
	}
	return d
}

// PageData is what a page template receives. Texts are in the page's
// language, with the bot's name and the number's lifetime filled in.
type PageData struct {
	// Lang is the page's language tag: "en", "de" or "fr".
	Lang string
	// Kind names the page: "continue.site", "finish", or for message pages
	// the message, like "link_expired", "declined" or "pending".
	Kind string
	// Heading, Message and Hint are the page's texts. Hint says what to do
	// next and may be empty.
	Heading string
	Message string
	Hint    string
	// Brand is the operator's brand, with BotName filled in.
	Brand Brand
	// Site is the host name the browser used, like "example.com".
	Site string
	// Code is the magic number on the finish page. CodeGrouped is the same
	// number in groups of three for reading ("123 456"), and CodeGroups
	// lists the groups.
	Code        string
	CodeGrouped string
	CodeGroups  []string
	// Minutes is how long the number lives.
	Minutes int
	// Flow is the flow's name and FlowKind its kind (site, oauth, payment),
	// where known.
	Flow     string
	FlowKind string
	// Form is the continue page's form.
	Form *Form
	// ForUser is, on the continue page, the name of the user the link was
	// made for, as the bot gave it in the link's ref.user.name; or empty.
	ForUser string
	// Refresh asks the browser to reload after this many seconds.
	Refresh int
	// Nonce authorises the page's inline style and script under its CSP:
	// <style nonce="{{.Nonce}}"> and <script nonce="{{.Nonce}}">.
	Nonce string
}

// Form is the continue page's form: a POST of the link's token to Action.
type Form struct {
	Action string
	Token  string
	Button string
}

// newPageData returns the data of a page in lang, before its kind is set.
func newPageData(brand Brand, lang, site string, minutes int) *PageData {
	d := &PageData{Lang: lang, Brand: brand, Site: site, Minutes: minutes}
	if d.Brand.BotName == "" {
		d.Brand.BotName = d.text("bot")
	}
	return d
}

// setKind sets the kind of page and its texts.
func (d *PageData) setKind(kind string) {
	d.Kind = kind
	d.Heading, d.Message = d.text(kind+".heading"), d.text(kind+".message")
	d.Hint = d.text(kind + ".hint")
}

// setCode puts the magic number on the page.
func (d *PageData) setCode(code string) {
	d.Code, d.CodeGrouped = code, GroupCode(code)
	d.CodeGroups = strings.Fields(d.CodeGrouped)
}

// CodeSpoken is the number as a screen reader should say it: digit by
// digit, with a pause between groups ("1 2 3, 4 5 6").
func (d *PageData) CodeSpoken() string {
	groups := make([]string, len(d.CodeGroups))
	for i, g := range d.CodeGroups {
		groups[i] = strings.Join(strings.Split(g, ""), " ")
	}
	return strings.Join(groups, ", ")
}

// T returns the text of a catalog key in the page's language, like
// {{.T "finish.copy"}}.
func (d *PageData) T(key string) string { return d.text(key) }

// SiteName is what the header and the window title call the site: the
// brand's title, or else the host name.
func (d *PageData) SiteName() string { return or(d.Brand.Title, d.Site) }

func (d *PageData) text(key string) string {
	return strings.NewReplacer("{bot}", d.Brand.BotName, "{minutes}", d.minutes(),
		"{user}", d.ForUser).Replace(lookup(d.Lang, key))
}

// minutes says how long the number lives, like "10 minutes".
func (d *PageData) minutes() string {
	if d.Minutes == 1 {
		return lookup(d.Lang, "minutes.one")
	}
	return strings.ReplaceAll(lookup(d.Lang, "minutes.other"), "{n}", strconv.Itoa(d.Minutes))
}

// render writes page name with status, after the security headers every page
// carries: no caching, no referrer, no framing, a strict CSP with a nonce.
func (p *Pages) render(w http.ResponseWriter, status int, name string, d *PageData,
	nonce string) error {
	d.Nonce = nonce
	pg := p.pages[name]
	var buf bytes.Buffer
	if err := pg.t.ExecuteTemplate(&buf, pg.entry, d); err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}

	h := w.Header()
	pageHeaders(h)
	h.Set("Content-Security-Policy", p.csp(name, nonce))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", d.Lang)
	h.Add("Vary", "Accept-Language")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := io.Copy(w, &buf)
	return err
}

// csp is the Content-Security-Policy of a page: nothing but its own nonce'd
// style and script, and images from this site and the logo's origin.
func (p *Pages) csp(name, nonce string) string {
	csp := "default-src 'none'; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce +
		"'; img-src " + p.imgSrc + "; frame-ancestors 'none'; base-uri 'none'"
	if name != PageContinue {
		// The continue form's answer redirects to the provider, which
		// form-action would block; every other page has no form.
		csp += "; form-action 'none'"
	}
	return csp
}

// pageHeaders sets the headers every answer of the handler carries.
func pageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}
