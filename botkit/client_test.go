package botkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

var teams = flow.Ref{
	ChannelID:    "msteams",
	ServiceURL:   "https://smba.trafficmanager.net/emea/",
	Conversation: flow.Conversation{ID: "19:a;b@thread.v2"},
	User:         flow.Account{ID: "29:user"},
}

func verifier(t *testing.T, issuer string) *flow.Verifier {
	t.Helper()
	key := must(flow.SecretKey("", linkSecret))
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func client(url string) *botkit.Client {
	return &botkit.Client{URL: url, Signer: must(flow.SecretSigner("", linkSecret))}
}

func TestLinkAudience(t *testing.T) {
	cases := []struct {
		name, url, audience, issuer, wantAud string
	}{
		{"URL", "https://shop.example/handoff", "", "", "https://shop.example/handoff"},
		{"trailing slash", "https://shop.example/handoff/", "", "", "https://shop.example/handoff"},
		{"configured audience", "https://10.0.0.5/handoff", "https://shop.example/handoff", "",
			"https://shop.example/handoff"},
		{"issuer", "https://shop.example/handoff", "", "bot-7", "https://shop.example/handoff"},
	}
	for _, c := range cases {
		cl := client(c.url)
		cl.Audience, cl.Issuer = c.audience, c.issuer
		link, err := cl.Link("checkout", teams, map[string]any{"orderId": "o-1"}, 5*time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		u, _ := url.Parse(link)
		if u.Path != "/handoff/start" {
			t.Errorf("%s: link path %q; want /handoff/start", c.name, u.Path)
		}
		claims, err := verifier(t, c.issuer).Link(u.Query().Get("t"), c.wantAud)
		if err != nil {
			t.Fatalf("%s: handler refuses the link: %v", c.name, err)
		}
		if claims.Flow != "checkout" || claims.Ref.Key() != teams.Key() ||
			string(claims.Data) != `{"orderId":"o-1"}` || claims.Issuer != c.issuer {
			t.Errorf("%s: claims = %+v", c.name, claims)
		}
		if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != 5*time.Minute {
			t.Errorf("%s: link lives %s; want 5m", c.name, life)
		}
	}
}

func TestLinkRefusesBadInput(t *testing.T) {
	cl := client("https://shop.example/handoff")
	if _, err := cl.Link("Check Out", teams, nil, 0); err == nil {
		t.Error("malformed flow name accepted")
	}
	noUser := teams
	noUser.User.ID = ""
	if _, err := cl.Link("checkout", noUser, nil, 0); err == nil {
		t.Error("reference without a user accepted")
	}
	keyless := &botkit.Client{URL: "https://shop.example/handoff"}
	if _, err := keyless.Link("checkout", teams, nil, 0); err == nil {
		t.Error("client without a key signed a link")
	}
}

// apiServer checks each request's API token as the handler does and
// answers with answer.
func apiServer(t *testing.T, aud string, answer http.HandlerFunc) *httptest.Server {
	t.Helper()
	v := verifier(t, "")
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		want := aud
		if want == "" {
			want = srv.URL + "/handoff"
		}
		if _, err := v.API(token, want); err != nil {
			http.Error(w, `{"error":"unauthorized","message":"a valid API token is required"}`,
				http.StatusUnauthorized)
			return
		}
		if _, err := v.Link(token, want); err == nil {
			t.Errorf("an API token passes as a link")
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAPIRequests(t *testing.T) {
	var got struct {
		method, path, query string
		body                map[string]string
	}
	srv := apiServer(t, "", func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.query = r.Method, r.URL.Path, r.URL.RawQuery
		got.body = nil
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		_, _ = w.Write([]byte(`{"status":"verified","flowId":"f-1","flow":"checkout",` +
			`"result":{"x":1}}`))
	})
	cl, ctx := client(srv.URL+"/handoff"), context.Background()

	res, err := cl.Verify(ctx, teams.Key(), "<at>Bot</at> 123 456")
	if err != nil || res.FlowID != "f-1" || string(res.Result) != `{"x":1}` {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	want := map[string]string{"channelId": "msteams", "conversationId": "19:a;b@thread.v2",
		"userId": "29:user", "code": "<at>Bot</at> 123 456"}
	if got.method != http.MethodPost || got.path != "/handoff/api/verify" ||
		fmt.Sprint(got.body) != fmt.Sprint(want) {
		t.Errorf("verify sent %s %s %v", got.method, got.path, got.body)
	}

	if _, err := cl.Status(ctx, teams.Key()); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(got.query)
	if got.method != http.MethodGet || got.path != "/handoff/api/status" ||
		q.Get("conversationId") != "19:a;b@thread.v2" || q.Get("userId") != "29:user" {
		t.Errorf("status sent %s %s?%s", got.method, got.path, got.query)
	}

	if _, err := cl.Cancel(ctx, teams.Key()); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPost || got.path != "/handoff/api/cancel" ||
		got.body["userId"] != "29:user" {
		t.Errorf("cancel sent %s %s %v", got.method, got.path, got.body)
	}
}

func TestAPITokenAudience(t *testing.T) {
	pending := func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"pending","flow":"checkout"}`))
	}
	srv := apiServer(t, "https://shop.example/handoff", pending)
	cl := client(srv.URL + "/handoff")
	if _, err := cl.Status(context.Background(), teams.Key()); !botkit.IsCode(err, "unauthorized") {
		t.Errorf("token for the URL's audience: %v; want unauthorized", err)
	}
	cl.Audience = "https://shop.example/handoff"
	st, err := cl.Status(context.Background(), teams.Key())
	if err != nil || st.Status != flow.StatusPending {
		t.Errorf("token for the configured audience: %+v, %v", st, err)
	}
}

func TestAPIErrors(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		header  string
		body    string
		code    string
		left    int
		retry   time.Duration
		message string
	}{
		{"wrong number", 422, "",
			`{"error":"invalid_code","message":"invalid code","attemptsLeft":3}`,
			"invalid_code", 3, 0, "invalid code"},
		{"locked", 423, "", `{"error":"locked","message":"locked"}`, "locked", -1, 0, "locked"},
		{"rate limited", 429, "7", `{"error":"rate_limited","message":"slow down"}`,
			"rate_limited", -1, 7 * time.Second, "slow down"},
		{"store down", 503, "2", `{"error":"unavailable","message":"Service Unavailable"}`,
			"unavailable", -1, 2 * time.Second, "Service Unavailable"},
		{"proxy page", 502, "", `<html>upstream SECRET-PAGE</html>`,
			"http_error", -1, 0, "Bad Gateway"},
		{"JSON without a code", 500, "", `{"oops":true}`,
			"http_error", -1, 0, "Internal Server Error"},
	}
	for _, c := range cases {
		srv := apiServer(t, "", func(w http.ResponseWriter, _ *http.Request) {
			if c.header != "" {
				w.Header().Set("Retry-After", c.header)
			}
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		})
		res, err := client(srv.URL+"/handoff").Verify(context.Background(), teams.Key(), "1")
		var apiErr *botkit.APIError
		if res != nil || !errors.As(err, &apiErr) {
			t.Fatalf("%s: got %v, %v; want an *APIError", c.name, res, err)
		}
		left := -1
		if apiErr.AttemptsLeft != nil {
			left = *apiErr.AttemptsLeft
		}
		if apiErr.Status != c.status || apiErr.Code != c.code || left != c.left ||
			apiErr.RetryAfter != c.retry || apiErr.Message != c.message {
			t.Errorf("%s: got %+v (left %d)", c.name, apiErr, left)
		}
		if !botkit.IsCode(fmt.Errorf("verifying: %w", err), c.code) {
			t.Errorf("%s: IsCode misses a wrapped error", c.name)
		}
		if strings.Contains(err.Error(), "SECRET-PAGE") {
			t.Errorf("%s: the error carries the answer's body: %v", c.name, err)
		}
	}
}

func TestTransportAndDecodingErrors(t *testing.T) {
	srv := apiServer(t, "", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`not json`))
	})
	_, err := client(srv.URL+"/handoff").Status(context.Background(), teams.Key())
	if err == nil || botkit.IsCode(err, "http_error") {
		t.Errorf("undecodable 200: %v; want a decoding error", err)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	_, err = client(down.URL+"/handoff").Status(context.Background(), teams.Key())
	var apiErr *botkit.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("unreachable handler: %v; want a transport error", err)
	}
	if botkit.IsCode(nil, "no_flow") || botkit.IsCode(errors.New("no_flow"), "no_flow") {
		t.Error("IsCode matched a nil or plain error")
	}
}

func TestAPITokenLifetime(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var token string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cl := client(srv.URL + "/handoff")
	cl.Now = func() time.Time { return now }
	_, _ = cl.Status(context.Background(), teams.Key())

	var claims jwt.RegisteredClaims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["typ"] != flow.TypeAPI || !claims.IssuedAt.Equal(now) ||
		claims.ExpiresAt.Sub(now) > flow.MaxAPITokenTTL || claims.ID == "" {
		t.Errorf("API token header %v, claims %+v", tok.Header, claims)
	}
}
