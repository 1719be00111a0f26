package flow

import (
	"net/http"
	"net/url"
)

// FinishMode says how the finish page with the magic number is shown.
type FinishMode string

// The finish modes.
const (
	// FinishBuiltin shows the handler's finish page (or the operator's
	// template for it).
	FinishBuiltin FinishMode = "builtin"
	// FinishProxy passes a GET for a page of the site behind the handler
	// down the chain, with the number in a request header and placeholders.
	FinishProxy FinishMode = "proxy"
)

// Finish configures the finish page.
type Finish struct {
	Mode FinishMode
	// Path is the site's page for FinishProxy.
	Path string
	// SetVar, if set, publishes a value to the server's placeholders before
	// the proxied request goes down the chain.
	SetVar func(r *http.Request, name, value string)
}

// Request headers the finish page of the site receives.
const (
	HeaderMagicNumber = "Handoff-Magic-Number"
	HeaderFlowID      = "Handoff-Flow-Id"
	HeaderFlow        = "Handoff-Flow"
)

// showCode shows the magic number of rec to the browser, by the configured
// finish mode.
func (e *Engine) showCode(w http.ResponseWriter, r *http.Request, next Next, rec *Record,
	code string) error {
	if e.finish.Mode == FinishProxy && next != nil {
		return e.proxyFinish(w, r, next, rec, code)
	}
	d := e.pageData(r, "finish."+rec.Kind)
	d.Kind = "finish"
	d.setCode(code)
	d.Flow, d.FlowKind = rec.Flow, rec.Kind
	return e.render(w, r, http.StatusOK, PageFinish, d)
}

// proxyFinish sends a GET for the site's finish page down the chain. The
// number goes in a request header and in placeholders, never in the URL, and
// the answer is marked not to be cached or referred.
func (e *Engine) proxyFinish(w http.ResponseWriter, r *http.Request, next Next, rec *Record,
	code string) error {
	sub := r.Clone(r.Context())
	sub.Method = http.MethodGet
	sub.Body, sub.ContentLength = http.NoBody, 0
	sub.URL = &url.URL{Path: e.finish.Path}
	sub.RequestURI = e.finish.Path
	for _, h := range []string{"Content-Type", "Content-Length", "Transfer-Encoding"} {
		sub.Header.Del(h)
	}
	sub.Header.Set(HeaderMagicNumber, code)
	sub.Header.Set(HeaderFlowID, rec.ID)
	sub.Header.Set(HeaderFlow, rec.Flow)
	if e.finish.SetVar != nil {
		e.finish.SetVar(sub, "magic_number", code)
		e.finish.SetVar(sub, "magic_number_grouped", GroupCode(code))
		e.finish.SetVar(sub, "flow_id", rec.ID)
		e.finish.SetVar(sub, "flow", rec.Flow)
	}
	return next(&noStoreWriter{ResponseWriter: w}, sub)
}

// noStoreWriter forces the page headers on whatever the site answers.
type noStoreWriter struct {
	http.ResponseWriter
	wrote bool
}

func (n *noStoreWriter) WriteHeader(status int) {
	if !n.wrote && status >= 200 {
		n.wrote = true
		pageHeaders(n.Header())
	}
	n.ResponseWriter.WriteHeader(status)
}

func (n *noStoreWriter) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

func (n *noStoreWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }
