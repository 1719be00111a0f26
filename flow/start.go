package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// crossOrigin refuses a start form posted from another site, so a page
// elsewhere cannot open a flow in the user's browser without the user.
var crossOrigin = http.NewCrossOriginProtection()

// serveStart handles {prefix}/start. A GET only checks the link and shows a
// page with a button; the POST from that button starts the flow. Link
// scanners and chat previews fetch links without pressing buttons, so they
// cannot use up a one-shot link.
func (e *Engine) serveStart(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		e.confirmStart(w, r)
	case http.MethodPost:
		e.postStart(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		e.page(w, r, http.StatusMethodNotAllowed, "bad_request")
	}
}

func (e *Engine) confirmStart(w http.ResponseWriter, r *http.Request) {
	if err := e.startPerIP.allow(e.clientIP(r), e.now()); err != nil {
		e.pageErr(w, r, err)
		return
	}
	token := r.URL.Query().Get("t")
	claims, err := e.verify.Link(token, e.audienceFor(r))
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	fc, err := e.flowFor(claims)
	if err != nil {
		e.pageErr(w, r, err)
		return
	}

	kind := fc.Provider.Kind()
	d := e.pageData(r, "continue."+kind)
	d.Flow, d.FlowKind = claims.Flow, kind
	d.ForUser = claims.Ref.User.Name
	d.Hint = d.text("continue.hint")
	d.Form = &Form{
		Action: e.prefix + "/start",
		Token:  token,
		Button: d.text("continue." + kind + ".button"),
	}
	_ = e.render(w, r, http.StatusOK, PageContinue, d)
}

func (e *Engine) postStart(w http.ResponseWriter, r *http.Request) {
	if err := crossOrigin.Check(r); err != nil {
		e.pageErr(w, r, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		e.pageErr(w, r, fmt.Errorf("%w: reading form: %w", ErrBadRequest, err))
		return
	}

	began := time.Now()
	if err := e.startPerIP.allow(e.clientIP(r), e.now()); err != nil {
		e.pageErr(w, r, err)
		return
	}
	aud := e.audienceFor(r)
	claims, err := e.verify.Link(r.PostForm.Get("t"), aud)
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if err := e.startPerFlow.allow(claims.Flow, e.now()); err != nil {
		e.pageErr(w, r, err)
		return
	}
	token := browserToken(r)
	if token == "" {
		token = randomString(e.rand, 24)
	}
	rec, err := e.start(r, claims, aud, token)
	if err != nil {
		e.pageErr(w, r, err)
		return
	}

	e.setBrowserCookie(w, r, token)
	e.proceed(w, r, rec, token)
	e.obs.Duration("start", rec.Flow, time.Since(began))
}

// proceed sends the browser on from a flow it holds: to the provider while
// the flow is pending, to the finish page once it completed.
func (e *Engine) proceed(w http.ResponseWriter, r *http.Request, rec *Record, token string) {
	switch rec.Status {
	case StatusPending:
	case StatusCompleted:
		http.Redirect(w, r, e.prefix+"/finish?h="+rec.Handle().String(), http.StatusSeeOther)
		return
	default:
		e.pageStatus(w, r, rec)
		return
	}

	fc := e.flows[rec.Flow]
	if fc.Provider == nil {
		e.pageErr(w, r, fmt.Errorf("%w: flow %q is no longer configured", ErrUnknownFlow, rec.Flow))
		return
	}
	redirect, err := e.begin(r, rec, fc.Provider)
	if err == nil {
		err = safeRedirect(redirect)
	}
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if site, ok := fc.Provider.(*Site); ok {
		e.setSiteCookie(w, r, &siteRoute{name: rec.Flow, site: site}, rec.Handle(), token,
			rec.Deadline.Sub(e.now()))
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
}

// start opens the flow a link asks for, or finds the one it opened before in
// this browser. A link opens at most one flow; a flow from an older link
// never replaces one from a newer link.
func (e *Engine) start(r *http.Request, c *LinkClaims, aud, token string) (*Record, error) {
	ctx := r.Context()
	fc, err := e.flowFor(c)
	if err != nil {
		return nil, err
	}

	conv := e.convID(aud, c.Ref.Key())
	linkKey := e.linkKey(aud, c.ID)
	for i := range maxRaces {
		// Opening is tried first: a new link is the common case, and its
		// write fails if the link was used, which resume then sorts out.
		rec, err := e.open(r, c, fc, conv, linkKey, token, i == 0)
		if !errors.Is(err, ErrConflict) {
			return rec, err
		}
		rec, err = e.resume(ctx, linkKey, conv, token)
		if rec != nil || err != nil {
			return rec, err
		}
		// The flow record changed under us; read it again.
	}
	return nil, fmt.Errorf("starting flow: %w", ErrConflict)
}

// flowFor returns the flow a link names, once its provider accepted the
// link's data.
func (e *Engine) flowFor(c *LinkClaims) (FlowConfig, error) {
	fc, ok := e.flows[c.Flow]
	if !ok {
		return fc, fmt.Errorf("%w: %q", ErrUnknownFlow, c.Flow)
	}
	if v, ok := fc.Provider.(Validator); ok {
		if err := v.ValidateData(c.Data); err != nil {
			return fc, fmt.Errorf("%w: data: %w", ErrBadToken, err)
		}
	}
	return fc, nil
}

// resume returns the flow a used link opened, if this browser holds it.
// It returns nil and no error for a link not used yet.
func (e *Engine) resume(ctx context.Context, linkKey, conv, token string) (*Record, error) {
	ent, err := e.store.Get(ctx, linkKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading link: %w", err)
	}

	h, err := ParseHandle(string(ent.Value))
	if err != nil || h.Conv != conv {
		return nil, ErrLinkUsed
	}
	rec, err := e.load(ctx, h)
	switch {
	case errors.Is(err, ErrSuperseded):
		return nil, ErrSuperseded
	case errors.Is(err, ErrNoFlow):
		return nil, ErrLinkUsed
	}
	if err != nil {
		return nil, err
	}
	if !e.bound(rec, token) {
		return nil, ErrLinkUsed
	}
	return rec, nil
}

// open creates the flow record for a new link, replacing an older flow of
// the same conversation and user, and marks the link used, atomically.
//
// With mayResume set, a record from a link of the same time held by this
// browser is taken for this link opened again: open then returns
// ErrConflict at once, before asking the provider for a new start.
func (e *Engine) open(r *http.Request, c *LinkClaims, fc FlowConfig, conv, linkKey, token string,
	mayResume bool) (*Record, error) {
	ctx := r.Context()
	fkey := flowKey(conv)
	old, err := e.store.Get(ctx, fkey)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading flow: %w", err)
	}
	var prev *Record
	if err == nil {
		if prev, err = unmarshalRecord(old.Value); err != nil {
			return nil, err
		}
		if !prev.Status.Final() && prev.LinkIssued.After(c.IssuedAt.Time) {
			return nil, ErrSuperseded
		}
		if mayResume && prev.LinkIssued.Equal(c.IssuedAt.Time) && e.bound(prev, token) {
			return nil, ErrConflict
		}
	}

	now := e.now()
	rec := &Record{
		ID: randomString(e.rand, 16), Conv: conv, Flow: c.Flow, Kind: fc.Provider.Kind(),
		Status: StatusPending, Ref: c.Ref, Data: c.Data,
		LinkIssued: c.IssuedAt.Time, Browser: e.browserMAC(token),
		Created: now, Updated: now, Deadline: now.Add(fc.TTL),
	}
	if p, ok := fc.Provider.(EarlyBeginner); ok {
		if err := e.beginEarly(r, rec, p); err != nil {
			return nil, err
		}
	}
	val, err := rec.marshal()
	if err != nil {
		return nil, err
	}

	linkTTL := max(c.ExpiresAt.Add(clockSkew).Sub(now), time.Minute)
	put := Create(fkey, val, e.recordTTL(rec, now))
	if prev != nil {
		put = Update(fkey, old.Rev, val, e.recordTTL(rec, now))
	}
	err = e.store.Apply(ctx,
		Create(linkKey, []byte(rec.Handle().String()), linkTTL),
		put,
		Schedule(fkey, rec.Deadline))
	if err != nil {
		return nil, fmt.Errorf("opening flow: %w", err)
	}

	if prev != nil && !prev.Status.Final() {
		prev.Status = StatusSuperseded
		e.transitioned(prev, StatusPending)
	}
	e.transitioned(rec, "")
	return rec, nil
}

// begun is what an early Begin of a new flow answered: where the browser
// goes, or why it cannot go on.
type begun struct {
	redirect string
	err      error
}

// beginEarly asks the provider of a new flow, not stored yet, where the
// browser goes, and seals the state it returns into the record, which is
// then stored once. A failure is kept for proceed to show, after the flow
// was stored, as when Begin fails after the start.
func (e *Engine) beginEarly(r *http.Request, rec *Record, p Provider) error {
	step, err := e.ask(r, rec, p)
	if err != nil {
		rec.begun = &begun{err: err}
		return nil
	}
	if step.State != nil {
		if rec.State, err = e.seal(step.State, "state", rec.ID); err != nil {
			return err
		}
	}
	rec.begun = &begun{redirect: step.Redirect}
	return nil
}

// ask calls the provider's Begin with what it sees of rec.
func (e *Engine) ask(r *http.Request, rec *Record, p Provider) (*Step, error) {
	f, err := e.view(rec, r)
	if err != nil {
		return nil, err
	}
	f.Origin = e.publicOrigin(r)

	began := time.Now()
	step, err := p.Begin(r.Context(), f)
	e.obs.Duration("provider", rec.Flow, time.Since(began))
	if err != nil {
		return nil, fmt.Errorf("beginning %s flow: %w", rec.Kind, err)
	}
	return step, nil
}

// begin asks the provider where the browser goes, keeping the state it
// returns sealed in the record. A flow begun early has its answer already.
func (e *Engine) begin(r *http.Request, rec *Record, p Provider) (string, error) {
	if rec.begun != nil {
		return rec.begun.redirect, rec.begun.err
	}
	step, err := e.ask(r, rec, p)
	if err != nil {
		return "", err
	}
	if step.State == nil {
		return step.Redirect, nil
	}

	sealed, err := e.seal(step.State, "state", rec.ID)
	if err != nil {
		return "", err
	}
	_, err = e.update(r.Context(), rec.Conv, func(cur *Record, _ time.Time) (txn, error) {
		if cur.ID != rec.ID {
			return txn{}, ErrSuperseded
		}
		if cur.Status != StatusPending {
			return txn{}, ErrFinished
		}
		cur.State = sealed
		return txn{write: true}, nil
	})
	if err != nil {
		return "", err
	}
	return step.Redirect, nil
}

// load returns the record h names; ErrSuperseded if a newer flow replaced it.
func (e *Engine) load(ctx context.Context, h Handle) (*Record, error) {
	rec, err := e.read(ctx, flowKey(h.Conv))
	if err != nil {
		return nil, err
	}
	if rec.ID != h.ID {
		return nil, ErrSuperseded
	}
	return rec, nil
}
