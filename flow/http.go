package flow

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// Next passes a request on to the rest of the server's handler chain.
type Next func(http.ResponseWriter, *http.Request) error

// Request limits.
const (
	// maxFormBody bounds the continue form.
	maxFormBody = 16 << 10
	// maxAPIBody bounds a bot API request.
	maxAPIBody = 16 << 10
	// maxWebhookBody bounds a provider's webhook.
	maxWebhookBody = 512 << 10
)

// ServeHTTP handles the routes under the prefix and the task paths of site
// flows, and passes everything else to next untouched but for the removal of
// client-sent Handoff-* headers, which only the handler may set.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	stripHandoffHeaders(r.Header)

	p := r.URL.Path
	if needsClean(p) {
		p = path.Clean(p)
	}
	if rest, ok := e.under(p); ok {
		e.route(w, r, rest, next)
		return nil
	}
	if route := e.siteAt(p); route != nil {
		return e.serveSite(w, r, next, route)
	}
	return next(w, r)
}

// under reports whether p is the prefix or below it, and what follows it.
func (e *Engine) under(p string) (string, bool) {
	if !strings.HasPrefix(p, e.prefix) {
		return "", false
	}
	rest := p[len(e.prefix):]
	return rest, rest == "" || rest[0] == '/'
}

// needsClean reports whether a path holds dot segments or doubled slashes,
// which must not let a request slip past the prefix or a task path.
func needsClean(p string) bool {
	return strings.Contains(p, "/.") || strings.Contains(p, "//")
}

// route serves the handler's own paths.
func (e *Engine) route(w http.ResponseWriter, r *http.Request, rest string, next Next) {
	switch {
	case rest == "/start":
		e.serveStart(w, r)
	case rest == "/callback" || rest == "/return":
		e.onlyGet(w, r, func() { e.serveReturn(w, r, next) })
	case rest == "/finish":
		e.onlyGet(w, r, func() { e.serveFinish(w, r, next) })
	case strings.HasPrefix(rest, "/api/"):
		e.serveAPI(w, r, strings.TrimPrefix(rest, "/api/"))
	case strings.HasPrefix(rest, "/webhook/"):
		e.serveWebhook(w, r, strings.TrimPrefix(rest, "/webhook/"))
	case rest == "/healthz":
		e.serveHealth(w, r)
	default:
		e.page(w, r, http.StatusNotFound, "not_found")
	}
}

func (e *Engine) onlyGet(w http.ResponseWriter, r *http.Request, serve func()) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		e.page(w, r, http.StatusMethodNotAllowed, "bad_request")
		return
	}
	serve()
}

// pageData returns the data of a page of kind, in the browser's language.
func (e *Engine) pageData(r *http.Request, kind string) *PageData {
	site := e.publicOrigin(r)
	if _, host, ok := strings.Cut(site, "://"); ok {
		site = host
	}
	d := newPageData(e.pages.brand, pageLang(r), site, codeMinutes(e.codeTTL))
	d.setKind(kind)
	return d
}

// codeMinutes is the lifetime of a number in whole minutes, rounded up.
func codeMinutes(ttl time.Duration) int {
	return max(int((ttl+time.Minute-1)/time.Minute), 1)
}

// render writes a page with a fresh nonce.
func (e *Engine) render(w http.ResponseWriter, r *http.Request, status int, name string,
	d *PageData) error {
	if r.Method == http.MethodHead {
		pageHeaders(w.Header())
		w.WriteHeader(status)
		return nil
	}
	err := e.pages.render(w, status, name, d, randomString(e.rand, 16))
	if err != nil {
		e.log.Error("rendering page", slog.String("page", name), slog.String("error", err.Error()))
	}
	return err
}

// page writes a message page of kind with status.
func (e *Engine) page(w http.ResponseWriter, r *http.Request, status int, kind string) {
	_ = e.render(w, r, status, PageMessage, e.pageData(r, kind))
}

// pageErr writes the page an error calls for, logging what the user is not
// shown.
func (e *Engine) pageErr(w http.ResponseWriter, r *http.Request, err error) {
	status, kind := classify(err)
	e.logErr(r.Context(), status, kind, err)
	setRetryAfter(w.Header(), status, err)
	e.page(w, r, status, kind)
}

// setRetryAfter tells a client when to come back after a 429 or 503.
func setRetryAfter(h http.Header, status int, err error) {
	var rl *ErrRateLimited
	switch {
	case errors.As(err, &rl):
		retryAfter(h, rl.RetryAfter)
	case status == http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
}

// logErr logs an error at a level by its status. Errors come from the
// engine's own wrapping and never carry tokens, codes or cookies.
func (e *Engine) logErr(ctx context.Context, status int, kind string, err error) {
	level := slog.LevelDebug
	switch {
	case status >= 500:
		level = slog.LevelError
	case status == http.StatusForbidden || status == http.StatusConflict:
		level = slog.LevelInfo
	}
	if e.log.Enabled(ctx, level) {
		e.log.Log(ctx, level, "request refused", slog.Int("status", status),
			slog.String("kind", kind), slog.String("error", err.Error()))
	}
}

// classify maps an error to an HTTP status and a page or API error kind.
func classify(err error) (int, string) {
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			return c.status, c.kind
		}
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge, "bad_request"
	}
	var rl *ErrRateLimited
	if errors.As(err, &rl) {
		return http.StatusTooManyRequests, "busy"
	}
	return http.StatusInternalServerError, "error"
}

var errorClasses = []struct {
	err    error
	status int
	kind   string
}{
	{ErrTokenExpired, http.StatusGone, "link_expired"},
	{ErrBadToken, http.StatusBadRequest, "link_invalid"},
	{ErrUnknownFlow, http.StatusNotFound, "link_invalid"},
	{ErrLinkUsed, http.StatusConflict, "link_used"},
	{ErrSuperseded, http.StatusGone, "superseded"},
	{ErrNotBound, http.StatusForbidden, "not_bound"},
	{ErrNoFlow, http.StatusNotFound, "no_flow"},
	{ErrExpired, http.StatusGone, "expired"},
	{ErrFinished, http.StatusConflict, "finished"},
	{ErrNotCompleted, http.StatusConflict, "in_progress"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrProviderUnavailable, http.StatusBadGateway, "unavailable"},
	{ErrProvider, http.StatusBadGateway, "failed"},
	{ErrStoreUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// stripHandoffHeaders removes every request header that reads as Handoff-*
// in any case, and with underscores for dashes, as some servers behind a
// proxy fold them together.
func stripHandoffHeaders(h http.Header) {
	for name := range h {
		if isHandoffHeader(name) {
			delete(h, name)
		}
	}
}

// isHandoffHeader reports whether name starts with "handoff-" or "handoff_"
// in any case. It runs on every request, so it does not allocate.
func isHandoffHeader(name string) bool {
	const p = "handoff-"
	if len(name) < len(p) {
		return false
	}
	for i := range len(p) {
		c := name[i]
		if p[i] == '-' {
			if c != '-' && c != '_' {
				return false
			}
		} else if c|0x20 != p[i] {
			return false
		}
	}
	return true
}
