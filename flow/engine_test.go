package flow_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

func TestSiteFlowEndToEnd(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	// The continue page checks the link without using it up.
	token := e.link()
	resp, body := e.get(b, "/handoff/start?t="+token)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="t"`) {
		t.Fatalf("continue page: got %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q; want no-store", got)
	}

	resp = e.open(b, token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != e.server.URL+"/checkout" {
		t.Fatalf("start: got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The site sees the flow, and no header the client forged.
	req, _ := http.NewRequest(http.MethodGet, e.server.URL+"/checkout", nil)
	req.Header.Set("Handoff-User-Id", "mallory")
	req.Header.Set("handoff_flow_id", "forged")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Headers map[string]string }
	_ = json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	if seen.Headers["Handoff-User-Id"] != "user-1" || seen.Headers["Handoff-Data"] != `{"sku":"tea"}` {
		t.Errorf("site headers = %v", seen.Headers)
	}
	if _, ok := seen.Headers["Handoff_flow_id"]; ok {
		t.Errorf("forged underscore header reached the site: %v", seen.Headers)
	}

	resp, body = e.get(b, "/checkout/done")
	if resp.Header.Get("Handoff-Complete") != "" || strings.Contains(body, "must not reach") {
		t.Fatalf("the site's completion reached the browser: %v %s", resp.Header, body)
	}
	m := codePattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no number: %s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", rp)
	}

	ctx := context.Background()
	st, err := e.bot.Status(ctx, e.key())
	if err != nil || st.Status != flow.StatusCompleted {
		t.Fatalf("status = %+v, %v", st, err)
	}

	// A rich-text paste with a mention verifies.
	res, err := e.bot.Verify(ctx, e.key(), "<at>Bot 2</at> <p>"+flow.GroupCode(m[1])+"</p>")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.Status != flow.StatusVerified || !strings.Contains(string(res.Result), `"orderId":"42"`) {
		t.Errorf("verify = %+v", res)
	}

	// The result is released once.
	if _, err := e.bot.Verify(ctx, e.key(), m[1]); !botkit.IsCode(err, "already_finished") {
		t.Errorf("second verify: %v; want already_finished", err)
	}

	e.work()
	evs := e.signal.Events()
	if len(evs) != 1 || evs[0].Type != flow.EventCompleted || evs[0].MagicNumber != "" || evs[0].Result != nil {
		t.Errorf("events = %+v; want one completion with no number or result", evs)
	}
}

func TestWrongCodesLockTheFlow(t *testing.T) {
	e := newEnv(t)
	code := e.finishSite(e.browser(), e.link())
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}

	ctx := context.Background()
	for left := 4; left >= 1; left-- {
		_, err := e.bot.Verify(ctx, e.key(), wrong)
		var apiErr *botkit.APIError
		if !asAPIError(err, &apiErr) || apiErr.Code != "invalid_code" || *apiErr.AttemptsLeft != left {
			t.Fatalf("attempt: %v; want invalid_code with %d left", err, left)
		}
	}
	if _, err := e.bot.Verify(ctx, e.key(), wrong); !botkit.IsCode(err, "locked") {
		t.Fatalf("fifth wrong code: %v; want locked", err)
	}
	if _, err := e.bot.Verify(ctx, e.key(), code); !botkit.IsCode(err, "locked") {
		t.Fatalf("right code after lock: %v; want locked", err)
	}

	e.work()
	evs := e.signal.Events()
	if len(evs) != 2 || evs[1].Type != flow.EventFailed || evs[1].Error != "too_many_attempts" {
		t.Errorf("events = %+v", evs)
	}
}

func asAPIError(err error, target **botkit.APIError) bool {
	ae, ok := err.(*botkit.APIError)
	*target = ae
	return ok
}

func TestLinkIsOneShotPerBrowser(t *testing.T) {
	e := newEnv(t)
	token := e.link()
	first := e.browser()
	resp := e.open(first, token)
	resp.Body.Close()

	// The same browser resumes.
	resp = e.open(first, token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same browser again: %d; want 303", resp.StatusCode)
	}

	// Another browser, such as another member of a group chat, is refused.
	resp = e.open(e.browser(), token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("other browser: %d; want 409", resp.StatusCode)
	}
}

func TestOtherBrowserCannotUseTheFlow(t *testing.T) {
	e := newEnv(t)
	first := e.browser()
	resp := e.open(first, e.link())
	resp.Body.Close()

	// A browser without the flow's cookie reaches the site without the flow.
	other := e.browser()
	resp, body := e.get(other, "/checkout")
	if strings.Contains(body, "user-1") {
		t.Errorf("other browser got the flow's headers: %s", body)
	}
	resp, _ = e.get(other, "/checkout/done")
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("completion from another browser: %d; want 409", resp.StatusCode)
	}
	st, _ := e.bot.Status(context.Background(), e.key())
	if st.Status != flow.StatusPending {
		t.Errorf("status = %s; want pending", st.Status)
	}
}

func TestNewerLinkSupersedes(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	older := e.link()
	e.clock.Advance(2 * time.Second)
	newer := e.link()

	resp := e.open(b, newer)
	resp.Body.Close()
	resp = e.open(b, older)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("older link after newer: %d; want 410", resp.StatusCode)
	}

	e.clock.Advance(2 * time.Second)
	third := e.link()
	code := e.finishSite(b, third)
	if _, err := e.bot.Verify(context.Background(), e.key(), code); err != nil {
		t.Fatalf("verify newest: %v", err)
	}
}

func TestAbandonedFlowExpires(t *testing.T) {
	e := newEnv(t)
	resp := e.open(e.browser(), e.link())
	resp.Body.Close()

	e.clock.Advance(31 * time.Minute)
	e.work()
	st, err := e.bot.Status(context.Background(), e.key())
	if err != nil || st.Status != flow.StatusExpired {
		t.Fatalf("status = %+v, %v; want expired", st, err)
	}
	evs := e.signal.Events()
	if len(evs) != 1 || evs[0].Type != flow.EventExpired {
		t.Errorf("events = %+v; want one expiry", evs)
	}
}

func TestCodeExpires(t *testing.T) {
	e := newEnv(t)
	code := e.finishSite(e.browser(), e.link())
	e.clock.Advance(11 * time.Minute)
	if _, err := e.bot.Verify(context.Background(), e.key(), code); !botkit.IsCode(err, "expired") {
		t.Fatalf("verify after code TTL: %v; want expired", err)
	}
	e.work()
	evs := e.signal.Events()
	if len(evs) != 2 || evs[1].Type != flow.EventExpired {
		t.Errorf("events = %+v; want completion then expiry", evs)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	resp := e.open(e.browser(), e.link())
	resp.Body.Close()
	st, err := e.bot.Cancel(context.Background(), e.key())
	if err != nil || st.Status != flow.StatusCancelled {
		t.Fatalf("cancel = %+v, %v", st, err)
	}
	if _, err := e.bot.Verify(context.Background(), e.key(), "123456"); !botkit.IsCode(err, "no_flow") {
		t.Errorf("verify after cancel: %v; want no_flow", err)
	}
}

func TestSiteFailure(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp := e.open(b, e.link())
	resp.Body.Close()
	resp, body := e.get(b, "/checkout/fail")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "did not work") {
		t.Errorf("failed task page: %d: %s", resp.StatusCode, body)
	}
	e.work()
	evs := e.signal.Events()
	if len(evs) != 1 || evs[0].Type != flow.EventFailed || evs[0].Error != "out_of_stock" {
		t.Errorf("events = %+v", evs)
	}
}

func TestDeliverFull(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) { c.Deliver = flow.DeliverFull })
	code := e.finishSite(e.browser(), e.link())
	e.work()
	evs := e.signal.Events()
	if len(evs) != 1 || evs[0].MagicNumber != code || !strings.Contains(string(evs[0].Result), "orderId") {
		t.Errorf("events = %+v; want the number and result", evs)
	}
}

func TestDeliveryRetriedUntilItLands(t *testing.T) {
	e := newEnv(t)
	e.signal.SetFail(true)
	e.finishSite(e.browser(), e.link())
	e.work()
	if n := len(e.signal.Events()); n != 0 {
		t.Fatalf("delivered %d while failing", n)
	}

	e.signal.SetFail(false)
	e.clock.Advance(3 * time.Second)
	e.work()
	if n := len(e.signal.Events()); n != 1 {
		t.Fatalf("delivered %d after recovery; want 1", n)
	}
}

func TestTrustedChannelSkipsTheNumber(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) { c.TrustedChannels = []string{"msteams"} })
	b := e.browser()
	resp := e.open(b, e.link())
	resp.Body.Close()
	resp, body := e.get(b, "/checkout/done")
	if resp.StatusCode != http.StatusOK || codePattern.MatchString(body) || !strings.Contains(body, "done") {
		t.Fatalf("finish page in a trusted channel: %d: %s", resp.StatusCode, body)
	}

	ctx := context.Background()
	if _, err := e.bot.Verify(ctx, e.key(), "123456"); !botkit.IsCode(err, "invalid_code") {
		t.Errorf("a number where none was shown: %v; want invalid_code", err)
	}
	res, err := e.bot.Verify(ctx, e.key(), "")
	if err != nil || !strings.Contains(string(res.Result), "orderId") {
		t.Fatalf("verify without a number: %+v, %v", res, err)
	}
}

func TestUntrustedChannelNeedsTheNumber(t *testing.T) {
	e := newEnv(t, func(c *flow.Config) { c.TrustedChannels = []string{"webchat"} })
	e.finishSite(e.browser(), e.link())
	if _, err := e.bot.Verify(context.Background(), e.key(), ""); !botkit.IsCode(err, "malformed_code") {
		t.Errorf("empty number in an untrusted channel: %v; want malformed_code", err)
	}
}

func TestMalformedCodeIsNotAGuess(t *testing.T) {
	e := newEnv(t)
	code := e.finishSite(e.browser(), e.link())
	ctx := context.Background()
	for _, text := range []string{"thanks!", "12345", "1234567", strings.Repeat("x", 5000)} {
		if _, err := e.bot.Verify(ctx, e.key(), text); !botkit.IsCode(err, "malformed_code") {
			t.Fatalf("verify %.10q: %v; want malformed_code", text, err)
		}
	}
	if _, err := e.bot.Verify(ctx, e.key(), code); err != nil {
		t.Fatalf("the right number after malformed ones: %v", err)
	}
}

func TestContinuePageNamesTheUser(t *testing.T) {
	e := newEnv(t)
	named := ref
	named.User.Name = "Alice <Admin>"
	_, body := e.get(e.browser(), "/handoff/start?t="+e.link(func(l *flow.Link) { l.Ref = named }))
	if !strings.Contains(body, "made for Alice &lt;Admin&gt;") {
		t.Errorf("continue page does not name the user, escaped: %s", body)
	}
}

// TestSiteAnswerIsReplaced checks that nothing of the site's completing
// answer reaches the browser, while headers set before the site ran stay.
func TestSiteAnswerIsReplaced(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp := e.open(b, e.link())
	resp.Body.Close()

	req := httptest.NewRequest(http.MethodPost, e.server.URL+"/checkout/done", nil)
	u, _ := url.Parse(e.server.URL + "/checkout/done")
	for _, c := range b.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Strict-Transport-Security", "max-age=63072000")
	err := e.engine.ServeHTTP(rec, req, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Set-Cookie", "site=1")
		w.Header().Set("X-Site", "1")
		w.Header().Set("Content-Length", "4")
		w.Header().Set("Handoff-Complete", `{"ok":true}`)
		_, err := io.WriteString(w, "body")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h := rec.Result().Header
	if h.Get("Set-Cookie") != "" || h.Get("X-Site") != "" || h.Get("Handoff-Complete") != "" {
		t.Errorf("the site's headers reached the browser: %v", h)
	}
	if h.Get("Strict-Transport-Security") == "" || !codePattern.MatchString(rec.Body.String()) {
		t.Errorf("finish page lost earlier headers or the number: %v %s", h, rec.Body.String())
	}
}
