package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// A completed flow is one whose number the browser was shown.
type completed struct {
	ref  flow.Ref
	code string
}

var codePattern = regexp.MustCompile(`data-code="(\d+)"`)

// browser returns a client with its own cookies over the shared transport,
// following no redirect.
func browser(c *http.Client) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: c.Transport, Jar: jar, Timeout: c.Timeout,
		CheckRedirect: c.CheckRedirect}
}

// completeSites walks n site flows to their finish pages with workers
// concurrent browsers, for the verify API to check their numbers.
func completeSites(ctx context.Context, c *http.Client, origin string, n, workers int) (
	[]completed, error,
) {
	bodies, refs, err := signLinks(origin+"/handoff", "checkout", n)
	if err != nil {
		return nil, err
	}
	out := make([]completed, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				code, err := completeSite(browser(c), origin, bodies[i])
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = completed{ref: refs[i], code: code}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, ctx.Err()
}

// completeSite opens a link of the site flow and finishes its task.
func completeSite(b *http.Client, origin, body string) (string, error) {
	resp, err := b.Do(startRequest(origin, body))
	if err != nil {
		return "", fmt.Errorf("starting site flow: %w", err)
	}
	readAll(resp)
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("starting site flow: status %d", resp.StatusCode)
	}
	resp, err = b.Get(origin + "/checkout/done")
	if err != nil {
		return "", fmt.Errorf("finishing site task: %w", err)
	}
	page := readAll(resp)
	m := codePattern.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("finishing site task: status %d, no number shown", resp.StatusCode)
	}
	return m[1], nil
}

// callbackTimes holds, per sign-in, how long the callback took and how much
// of it the provider spent.
type callbackTimes struct {
	total, provider, added []time.Duration
}

// signIns walks n oauth sign-ins one after the other, so that the
// provider's time during a callback belongs to that callback.
func signIns(c *http.Client, p *idp, origin string, n int) (*callbackTimes, error) {
	bodies, _, err := signLinks(origin+"/handoff", "idp", n)
	if err != nil {
		return nil, err
	}
	t := &callbackTimes{}
	for _, body := range bodies {
		total, provider, err := signIn(browser(c), p, origin, body)
		if err != nil {
			return nil, err
		}
		t.total = append(t.total, total)
		t.provider = append(t.provider, provider)
		t.added = append(t.added, total-provider)
	}
	slices.Sort(t.total)
	slices.Sort(t.provider)
	slices.Sort(t.added)
	return t, nil
}

// signIn opens a link of the oauth flow, signs in at the provider, and
// times the callback.
func signIn(b *http.Client, p *idp, origin, body string) (
	total, provider time.Duration, err error,
) {
	resp, err := b.Do(startRequest(origin, body))
	if err != nil {
		return 0, 0, fmt.Errorf("starting sign-in: %w", err)
	}
	readAll(resp)
	auth := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || auth == "" {
		return 0, 0, fmt.Errorf("starting sign-in: status %d", resp.StatusCode)
	}
	resp, err = b.Get(auth)
	if err != nil {
		return 0, 0, fmt.Errorf("signing in at the provider: %w", err)
	}
	readAll(resp)
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || callback == "" {
		return 0, 0, fmt.Errorf("signing in at the provider: status %d", resp.StatusCode)
	}

	spent, began := p.spent(), time.Now()
	resp, err = b.Get(callback)
	if err != nil {
		return 0, 0, fmt.Errorf("calling back: %w", err)
	}
	page := readAll(resp)
	total, provider = time.Since(began), p.spent()-spent
	if resp.StatusCode != http.StatusOK || !codePattern.MatchString(page) {
		return 0, 0, fmt.Errorf("calling back: status %d, no number shown", resp.StatusCode)
	}
	return total, provider, nil
}

// pctOf returns the p-th percentile of sorted durations.
func pctOf(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[int(float64(len(d)-1)*p/100)]
}
