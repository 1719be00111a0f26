package flowtest

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// Browser returns an HTTP client with cookies of its own that does not
// follow redirects: a test's browser, whose every step the test checks.
func Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// Continue presses Continue on the continue page of a link, in browser b:
// it posts the link's token back to the link's URL, from the link's origin,
// as the page's form does. The caller closes the answer's body.
func Continue(b *http.Client, link string) (*http.Response, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, err
	}
	token := u.Query().Get("t")
	if token == "" {
		return nil, errors.New("flowtest: the link carries no token")
	}
	u.RawQuery = ""
	return ContinueToken(b, u.String(), token)
}

// ContinueToken posts a link's token to the handler's start URL, from the
// start URL's origin, as the continue page's form does.
func ContinueToken(b *http.Client, start, token string) (*http.Response, error) {
	u, err := url.Parse(start)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, start,
		strings.NewReader(url.Values{"t": {token}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	return b.Do(req)
}
