package flow_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestCookieAttributes checks the cookies that bind a flow to a browser:
// set on the answer that starts the flow (before its status line), HttpOnly,
// SameSite=Lax, scoped to the prefix or the task path, Secure on HTTPS only.
func TestCookieAttributes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		e := newEnv(t)
		srv := e.server
		if tls {
			srv = httptest.NewTLSServer(e.server.Config.Handler)
			defer srv.Close()
		}
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

		l := e.link()
		if tls {
			e.bot.URL = srv.URL + "/handoff"
			l = e.linkFor(srv.URL + "/handoff")
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/handoff/start",
			strings.NewReader(url.Values{"t": {l}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("start over TLS=%v: %d", tls, resp.StatusCode)
		}

		cookies := map[string]*http.Cookie{}
		for _, c := range resp.Cookies() {
			cookies[c.Name] = c
		}
		want := map[string]string{"handoff": "/handoff", "handoff_checkout": "/checkout"}
		for name, path := range want {
			c := cookies[name]
			switch {
			case c == nil:
				t.Errorf("TLS=%v: no %s cookie on the 303", tls, name)
			case c.Path != path || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tls:
				t.Errorf("TLS=%v: cookie %s = %+v; want Path=%s, HttpOnly, SameSite=Lax, Secure=%v",
					tls, name, c, path, tls)
			case c.MaxAge <= 0:
				t.Errorf("TLS=%v: cookie %s has no Max-Age", tls, name)
			}
		}
	}
}

// TestStartRefusesCrossSitePost checks that a page on another site cannot
// start a flow in the user's browser.
func TestStartRefusesCrossSitePost(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.server.URL+"/handoff/start",
		strings.NewReader(url.Values{"t": {e.link()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := e.browser().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site start: %d with %d cookies; want 400 and none", resp.StatusCode, len(resp.Cookies()))
	}
}
