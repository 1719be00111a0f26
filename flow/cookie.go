package flow

import (
	"net/http"
	"strings"
	"time"
)

// Cookies. The browser cookie identifies the browser to every flow it
// opened; a site cookie also carries the flow's handle, because it travels
// to the site's task path where no URL names the flow.
const (
	browserCookie    = "handoff"
	siteCookiePrefix = "handoff_"
	// browserTokenLen is the encoded length of a browser token (24 bytes).
	browserTokenLen  = 32
	browserCookieAge = 24 * time.Hour
)

// browserToken returns the browser's token from its cookie, or "".
func browserToken(r *http.Request) string {
	c, err := r.Cookie(browserCookie)
	if err != nil || !isID(c.Value, browserTokenLen) {
		return ""
	}
	return c.Value
}

// setBrowserCookie binds the browser to flows under the prefix.
func (e *Engine) setBrowserCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name:     browserCookie,
		Value:    token,
		Path:     e.prefix,
		MaxAge:   int(browserCookieAge / time.Second),
		HttpOnly: true,
		Secure:   e.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// setSiteCookie lets requests to a site flow's task path find the flow.
func (e *Engine) setSiteCookie(w http.ResponseWriter, r *http.Request, route *siteRoute,
	h Handle, token string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     siteCookiePrefix + route.name,
		Value:    h.String() + "." + token,
		Path:     route.site.Path,
		MaxAge:   int(ttl / time.Second),
		HttpOnly: true,
		Secure:   e.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// siteCookie returns the handle and browser token of a site flow's cookie.
func siteCookie(r *http.Request, name string) (Handle, string, bool) {
	c, err := r.Cookie(siteCookiePrefix + name)
	if err != nil {
		return Handle{}, "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !isID(c.Value[i+1:], browserTokenLen) {
		return Handle{}, "", false
	}
	h, err := ParseHandle(c.Value[:i])
	if err != nil {
		return Handle{}, "", false
	}
	return h, c.Value[i+1:], true
}

// secure reports whether cookies must be Secure: on HTTPS, or when the
// public origin is HTTPS behind a proxy that ends TLS.
func (e *Engine) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(e.audience, "https://")
}

// bound reports whether the browser holding token is the one rec is bound to.
func (e *Engine) bound(rec *Record, token string) bool {
	return token != "" && Equal(rec.Browser, e.browserMAC(token))
}
