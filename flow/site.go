package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Site is a flow whose task runs on the site behind the handler. The user is
// sent to Path; while the flow is open, requests under Path carry the flow in
// Handoff-* headers, and the site finishes the flow by answering with a
// Handoff-Complete header.
type Site struct {
	// Path is where the task starts, like "/checkout". Requests to it and
	// below it belong to the flow.
	Path string
}

// Headers between the handler and the site.
const (
	HeaderChannelID      = "Handoff-Channel-Id"
	HeaderConversationID = "Handoff-Conversation-Id"
	HeaderUserID         = "Handoff-User-Id"
	HeaderData           = "Handoff-Data"
	// HeaderComplete is the site's answer that ends the flow: a JSON object
	// as the result, or "failed", or "failed:CODE".
	HeaderComplete = "Handoff-Complete"
)

// maxCompleteLen bounds the site's Handoff-Complete header.
const maxCompleteLen = 16 << 10

// Kind implements Provider.
func (s *Site) Kind() string { return KindSite }

// Begin implements Provider: the browser goes to the task path.
func (s *Site) Begin(_ context.Context, f *Flow) (*Step, error) {
	return &Step{Redirect: f.Origin + s.Path}, nil
}

// ValidatePath checks a task path: absolute, clean, not the root, and safe
// to redirect a browser to.
func (s *Site) ValidatePath() error {
	if !strings.HasPrefix(s.Path, "/") || s.Path == "/" || needsClean(s.Path) ||
		strings.ContainsAny(s.Path, "?#;,") || safeRedirect(s.Path) != nil {
		return fmt.Errorf("site path %q must be a plain absolute path below the root", s.Path)
	}
	return nil
}

// siteRoute is a site flow's task path.
type siteRoute struct {
	name string
	site *Site
}

// sortSites orders routes longest path first, so the most specific wins.
func sortSites(routes []*siteRoute) {
	slices.SortFunc(routes, func(a, b *siteRoute) int { return len(b.site.Path) - len(a.site.Path) })
}

// siteAt returns the site flow whose task path holds p, if any.
func (e *Engine) siteAt(p string) *siteRoute {
	for _, s := range e.sites {
		if strings.HasPrefix(p, s.site.Path) &&
			(len(p) == len(s.site.Path) || p[len(s.site.Path)] == '/') {
			return s
		}
	}
	return nil
}

// serveSite passes a request on a task path to the site: with the flow's
// headers when the browser holds an open flow, and always catching a
// Handoff-Complete answer so that it never reaches the browser.
func (e *Engine) serveSite(w http.ResponseWriter, r *http.Request, next Next,
	route *siteRoute) error {
	rec, err := e.siteFlow(r, route)
	if err != nil {
		e.pageErr(w, r, err)
		return nil
	}
	if rec != nil {
		setSiteHeaders(r.Header, rec)
	}

	iw := &interceptWriter{ResponseWriter: w, before: w.Header().Clone()}
	err = next(iw, r)
	if !iw.decided && !iw.caught && err == nil {
		// The site wrote nothing; its headers still count.
		iw.WriteHeader(http.StatusOK)
	}
	if !iw.caught {
		return err
	}
	if rec == nil {
		e.log.Warn("site answered Handoff-Complete outside an open flow")
		e.page(w, r, http.StatusConflict, "finished")
		return nil
	}

	out, perr := parseComplete(iw.complete)
	if perr != nil {
		e.log.Error("site answered a malformed Handoff-Complete", "error", perr.Error())
		out = &Outcome{Failure: "site_error"}
	}
	e.finishFlow(r.Context(), w, r, next, rec, out)
	return nil
}

// siteFlow returns the open flow the browser holds for a site flow, or nil.
// It fails only when the store cannot be read: the request must then not
// reach the site as if the browser held no flow, where a completion would
// be lost.
func (e *Engine) siteFlow(r *http.Request, route *siteRoute) (*Record, error) {
	h, token, ok := siteCookie(r, route.name)
	if !ok {
		return nil, nil
	}
	rec, err := e.load(r.Context(), h)
	if errors.Is(err, ErrStoreUnavailable) {
		return nil, err
	}
	if err != nil || rec.Status != StatusPending || !e.bound(rec, token) {
		return nil, nil
	}
	return rec, nil
}

func setSiteHeaders(h http.Header, rec *Record) {
	h.Set(HeaderFlowID, rec.ID)
	h.Set(HeaderFlow, rec.Flow)
	h.Set(HeaderChannelID, rec.Ref.ChannelID)
	h.Set(HeaderConversationID, rec.Ref.Conversation.ID)
	h.Set(HeaderUserID, rec.Ref.User.ID)
	if len(rec.Data) > 0 {
		h.Set(HeaderData, string(rec.Data))
	}
}

// failurePattern is what a failure code may be.
var failurePattern = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// parseComplete reads the site's Handoff-Complete answer.
func parseComplete(v string) (*Outcome, error) {
	v = strings.TrimSpace(v)
	switch {
	case len(v) > maxCompleteLen:
		return nil, fmt.Errorf("%w: Handoff-Complete longer than %d bytes", ErrBadRequest, maxCompleteLen)
	case v == "failed":
		return &Outcome{Failure: "site_failed"}, nil
	case strings.HasPrefix(v, "failed:"):
		code := strings.TrimPrefix(v, "failed:")
		if !failurePattern.MatchString(code) {
			return nil, fmt.Errorf("%w: failure code must be [a-z0-9_]{1,40}", ErrBadRequest)
		}
		return &Outcome{Failure: code}, nil
	}

	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: Handoff-Complete must be a JSON object or \"failed\"", ErrBadRequest)
	}
	return &Outcome{Result: json.RawMessage(v)}, nil
}

// interceptWriter passes the site's answer through unless it carries
// Handoff-Complete; then it drops the answer, headers and body, keeping only
// the header's value, and puts back the headers set before the site ran.
type interceptWriter struct {
	http.ResponseWriter
	before   http.Header
	decided  bool
	caught   bool
	complete string
}

func (iw *interceptWriter) WriteHeader(status int) {
	if iw.decided || iw.caught {
		return
	}
	if status < 200 {
		iw.ResponseWriter.WriteHeader(status)
		return
	}
	h := iw.Header()
	if vals, ok := h[HeaderComplete]; ok {
		iw.caught = true
		iw.complete = strings.Join(vals, ",")
		clear(h)
		for k, v := range iw.before {
			h[k] = v
		}
		return
	}
	iw.decided = true
	iw.ResponseWriter.WriteHeader(status)
}

func (iw *interceptWriter) Write(b []byte) (int, error) {
	if !iw.decided && !iw.caught {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.caught {
		return len(b), nil
	}
	return iw.ResponseWriter.Write(b)
}

// Flush passes a flush on once the answer is known to go through.
func (iw *interceptWriter) Flush() {
	if !iw.decided {
		return
	}
	if f, ok := iw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (iw *interceptWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }
