package tests

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive headless Chromium (Debian's chromium package,
// which scripts/setup.sh installs). One browser serves the whole test
// binary; each tab gets a fresh incognito context, so it has cookies of its
// own, as a second browser would.

// screenshotDir is where the tests write their screenshots of the pages
// when HANDOFF_SCREENSHOTS=1, for docs/pages.md.
const screenshotDir = "../docs/screenshots"

// Viewports: the tabs' default, and a small phone.
const (
	tabWidth, tabHeight     = 480, 680
	phoneWidth, phoneHeight = 360, 740
)

var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// chromium returns the browser's context, starting it at first use. A
// missing Chromium fails the test: the browser tests are part of the suite.
func chromium(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			shared.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
			chromedp.Flag("lang", "en-US"), chromedp.Flag("hide-scrollbars", true))
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		shared.ctx, shared.cancel = ctx, func() { cancel(); acancel() }
		if err := chromedp.Do(ctx); err != nil {
			shared.err = fmt.Errorf("starting %s: %w", path, err)
		}
	})
	if shared.err != nil {
		t.Fatalf("the browser tests need Chromium (run scripts/setup.sh): %v", shared.err)
	}
	return shared.ctx
}

// stopChromium ends the shared browser, if it was started.
func stopChromium() {
	if shared.cancel != nil {
		shared.cancel()
	}
}

// chromiumPath finds Chromium: $CHROMIUM, or a chromium on the PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on the PATH")
}

// tab is a browser tab with cookies of its own. It records the requests
// the page makes and what the browser logs, so that a test can check that
// nothing left the origin and the CSP blocked nothing.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu sync.Mutex
	// page is the address of the document loading or loaded; visited lists
	// every document the tab loaded, redirects included.
	page     string
	visited  []string
	requests []string
	problems []string
}

// newTab opens a tab in a fresh incognito context, with a viewport of
// tabWidth by tabHeight.
func newTab(t *testing.T) *tab {
	t.Helper()
	tb := &tab{t: t}
	ctx, cancel := chromedp.NewContext(chromium(t), chromedp.WithNewBrowserContext(),
		chromedp.WithListener(tb.record))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(tabWidth, tabHeight)); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tb.ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return tb
}

// record keeps the requests and the browser's complaints. It runs in the
// tab's event loop, so it only appends. The browser's own fetch of a site's
// /favicon.ico is not the page's doing, and may come late from the page
// before, so it is left out.
func (tb *tab) record(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if strings.HasSuffix(ev.Request.URL, "/favicon.ico") {
			break
		}
		if ev.Type == network.ResourceTypeDocument {
			tb.page = ev.Request.URL
			tb.visited = append(tb.visited, ev.Request.URL)
		} else {
			tb.requests = append(tb.requests, ev.Request.URL)
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError && e.Source != log.EntrySourceSecurity {
			break
		}
		if e.Source == log.EntrySourceNetwork &&
			(e.URL == tb.page || strings.HasSuffix(e.URL, "/favicon.ico")) {
			// An error page's own status is what the test asked for.
			break
		}
		tb.problems = append(tb.problems, string(e.Source)+": "+e.Text)
	case *runtime.EventExceptionThrown:
		tb.problems = append(tb.problems, "exception: "+ev.ExceptionDetails.Text)
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning:
			tb.problems = append(tb.problems, "console."+string(ev.Type))
		}
	}
}

// forget drops what was recorded so far, before a new page loads.
func (tb *tab) forget() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.requests, tb.problems = nil, nil
}

// open loads a URL and returns the response to it.
func (tb *tab) open(u string) *network.Response {
	tb.t.Helper()
	tb.forget()
	resp, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		tb.t.Fatalf("opening %s: %v", u, err)
	}
	return resp
}

// click clicks the element sel finds, as a user does, and returns the
// response of the page that loads after it.
func (tb *tab) click(sel string) *network.Response {
	tb.t.Helper()
	tb.forget()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("clicking %s: %v", sel, err)
	}
	return resp
}

// reload reloads the page and returns the response.
func (tb *tab) reload() *network.Response {
	tb.t.Helper()
	tb.forget()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Reload())
	if err != nil {
		tb.t.Fatalf("reloading: %v", err)
	}
	return resp
}

// do runs actions in the tab.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// text returns the visible text of the element sel finds.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return eval[string](tb, `(document.querySelector(`+jsString(sel)+`) || {innerText: ""}).innerText`)
}

// url returns the address of the page.
func (tb *tab) url() *url.URL {
	tb.t.Helper()
	u, err := url.Parse(eval[string](tb, `location.href`))
	if err != nil {
		tb.t.Fatal(err)
	}
	return u
}

// setLanguage makes the tab ask for pages in lang.
func (tb *tab) setLanguage(lang string) {
	tb.t.Helper()
	_, err := chromedp.Call(tb.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": lang},
	})
	if err != nil {
		tb.t.Fatal(err)
	}
}

// darkMode makes the page render in its dark colour scheme, or not.
func (tb *tab) darkMode(on bool) {
	tb.t.Helper()
	scheme := "light"
	if on {
		scheme = "dark"
	}
	_, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		tb.t.Fatal(err)
	}
}

// phone emulates a small phone with a touch screen.
func (tb *tab) phone() {
	tb.do(chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(2),
		chromedp.EmulateMobile, chromedp.EmulateTouch))
}

// withoutJavaScript turns scripts off in the tab.
func (tb *tab) withoutJavaScript() {
	tb.t.Helper()
	_, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: true})
	if err != nil {
		tb.t.Fatal(err)
	}
}

// allowClipboard lets pages of origin write and read the clipboard, as a
// user's click on a permission prompt would.
func (tb *tab) allowClipboard(origin string) {
	tb.t.Helper()
	id := chromedp.FromContext(tb.ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(tb.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name},
			Setting:    cdpbrowser.PermissionSettingGranted,
			Origin:     origin, BrowserContextID: id,
		})
		if err != nil {
			tb.t.Fatalf("granting %s: %v", name, err)
		}
	}
	_, err := chromedp.Call(tb.ctx, emulation.SetFocusEmulationEnabled,
		emulation.SetFocusEmulationEnabledParams{Enabled: true})
	if err != nil {
		tb.t.Fatal(err)
	}
}

// cookie returns the value of a cookie the tab holds for u, or "".
func (tb *tab) cookie(u, name string) string {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		tb.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// shot saves a screenshot of the viewport as docs/screenshots/NAME.png when
// HANDOFF_SCREENSHOTS=1.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	if os.Getenv("HANDOFF_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}
