package botkit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// linkSecret is the secret the examples' handler and bot share.
var linkSecret = []byte("example-link-secret-0123456789abcdef")

// startHandler serves a handler with one site flow, "checkout", in front of
// a shop whose POST /checkout/confirm completes the task with the order in
// the link's data. It stands for a Caddy with bot_handoff:
//
//	bot_handoff {
//		link_key secret {env.HANDOFF_LINK_SECRET}
//		site checkout {
//			to /checkout
//		}
//	}
func startHandler() *httptest.Server {
	key := must(flow.SecretKey("", linkSecret))
	verifier := must(flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}}))
	engine := must(flow.New(flow.Config{
		Verifier: verifier,
		Store:    memstore.New(nil),
		Keys:     must(flow.NewKeyring([]byte("example-state-key-0123456789abcdef"))),
		Flows: map[string]flow.FlowConfig{
			"checkout": {Provider: &flow.Site{Path: "/checkout"}, TTL: 30 * time.Minute},
		},
	}))
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := engine.ServeHTTP(w, r, shop); err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	}))
}

// shop is the site behind the handler: confirming the checkout ends the
// task with a result for the bot.
func shop(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodPost && r.URL.Path == "/checkout/confirm" {
		var data struct {
			OrderID string `json:"orderId"`
		}
		_ = json.Unmarshal([]byte(r.Header.Get(flow.HeaderData)), &data)
		result, _ := json.Marshal(map[string]string{"orderId": data.OrderID, "status": "confirmed"})
		w.Header().Set(flow.HeaderComplete, string(result))
		return nil
	}
	_, err := io.WriteString(w,
		`<form method="post" action="/checkout/confirm"><button>Confirm</button></form>`)
	return err
}

// userFinishes is the user in a browser: it opens link, presses Continue,
// confirms the order, and returns the number the finish page shows.
func userFinishes(link string) string {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	u := must(url.Parse(link))
	origin := u.Scheme + "://" + u.Host

	req := must(http.NewRequest(http.MethodPost, origin+u.Path,
		strings.NewReader(url.Values{"t": {u.Query().Get("t")}}.Encode())))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	page(browser, req) // the Continue button, then the shop's checkout page

	finish := page(browser, must(http.NewRequest(http.MethodPost, origin+"/checkout/confirm", nil)))
	m := regexp.MustCompile(`data-code="(\d+)"`).FindStringSubmatch(finish)
	if m == nil {
		panic("no number on the finish page")
	}
	return m[1]
}

// post sends a webhook request with signature header sig to h and returns
// the status it answers.
func post(h http.Handler, path, sig string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
	req.Header.Set(webhook.HeaderSignature, sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func page(b *http.Client, req *http.Request) string {
	resp := must(b.Do(req))
	defer resp.Body.Close()
	body := must(io.ReadAll(resp.Body))
	if resp.StatusCode != http.StatusOK {
		panic(resp.Status + ": " + string(body))
	}
	return string(body)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
