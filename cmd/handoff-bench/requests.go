package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// linkSecret is the bot's link key, given to Caddy in HANDOFF_LINK_SECRET.
const linkSecret = "bench-link-secret-0123456789abcdef0123"

// users numbers the users of every link, so that no two links of a run share
// a conversation and user (a newer link would supersede the older flow).
var users atomic.Int64

// refFor returns the reference of a fresh user, with IDs as long as
// Microsoft Teams makes them.
func refFor() flow.Ref {
	n := users.Add(1)
	return flow.Ref{
		ChannelID:  "msteams",
		ServiceURL: "https://smba.trafficmanager.net/emea/",
		Conversation: flow.Conversation{ID: fmt.Sprintf("a:1Xj7Lk3bench%032d", n),
			TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		User: flow.Account{ID: fmt.Sprintf("29:1Gh5bench%040d", n), Name: "Jane Doe"},
	}
}

// signer signs links and API tokens as the bot does.
func signer() flow.Signer {
	s, err := flow.SecretSigner("", []byte(linkSecret))
	if err != nil {
		panic(err) // the secret is a constant of the right length
	}
	return s
}

// signLinks returns n start form bodies, each with a fresh link for flow
// name on the handler at base (origin + prefix), and the refs they name.
func signLinks(base, name string, n int) ([]string, []flow.Ref, error) {
	s := signer()
	bodies, refs := make([]string, n), make([]flow.Ref, n)
	for i := range n {
		refs[i] = refFor()
		tok, err := s.SignLink(flow.Link{Flow: name, Ref: refs[i], Audience: base, TTL: 10 * time.Minute})
		if err != nil {
			return nil, nil, fmt.Errorf("signing link: %w", err)
		}
		bodies[i] = url.Values{"t": {tok}}.Encode()
	}
	return bodies, refs, nil
}

// startRequest is the continue form's POST, from a page of the same origin.
func startRequest(origin, body string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, origin+"/handoff/start", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", origin)
	return r
}

// startLoad posts one link of bodies per request.
func startLoad(name, origin string, bodies []string) load {
	return load{name: name, want: http.StatusSeeOther, next: func(i int) *http.Request {
		if i >= len(bodies) {
			return nil
		}
		return startRequest(origin, bodies[i])
	}}
}

// browserHeaders are what a browser sends for a page of the site.
var browserHeaders = map[string]string{
	"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
	"Accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"Accept-Language": "en-GB,en;q=0.9,de;q=0.8",
	"Cookie":          "session=abc123; theme=dark",
	"Sec-Fetch-Dest":  "document",
	"Sec-Fetch-Mode":  "navigate",
	"Sec-Fetch-Site":  "none",
}

// pageLoad gets a page of the site outside the handler's paths.
func pageLoad(name, origin string) load {
	return load{name: name, want: http.StatusOK, next: func(int) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, origin+"/", nil)
		for k, v := range browserHeaders {
			r.Header.Set(k, v)
		}
		return r
	}}
}

// oauth2ProxyLoad gets oauth2-proxy's sign-in start.
func oauth2ProxyLoad(name, origin string) load {
	return load{name: name, want: http.StatusFound, next: func(int) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, origin+"/oauth2/start?rd=%2F", nil)
		for k, v := range browserHeaders {
			r.Header.Set(k, v)
		}
		return r
	}}
}

// verifyLoad calls the verify API once per completed flow.
func verifyLoad(name, base string, done []completed) (load, error) {
	tok, err := signer().SignAPI(flow.APIToken{Audience: base, TTL: flow.MaxAPITokenTTL})
	if err != nil {
		return load{}, fmt.Errorf("signing API token: %w", err)
	}
	return load{name: name, want: http.StatusOK, next: func(i int) *http.Request {
		if i >= len(done) {
			return nil
		}
		k := done[i].ref.Key()
		body := fmt.Sprintf(`{"channelId":%q,"conversationId":%q,"userId":%q,"code":%q}`,
			k.ChannelID, k.ConversationID, k.UserID, done[i].code)
		r, _ := http.NewRequest(http.MethodPost, base+"/api/verify", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}}, nil
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}
