package stateapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The fake is only worth its tests if it holds callers to the service's
// rules; these check the rules themselves, over plain HTTP.

func start(t *testing.T, now func() time.Time) (*Server, string) {
	s := Start(t, Options{AppID: "app", AppPassword: "secret", TokenTTL: time.Hour, Now: now})
	return s, s.URL + "/v3/botstate/ch/conversations/c%2F1/users/u"
}

// token fetches a token with the given secret and scope; "" if refused.
func token(t *testing.T, s *Server, secret, scope string) (string, int) {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"app"},
		"client_secret": {secret}, "scope": {scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.AccessToken, resp.StatusCode
}

// call sends a state request and returns the status and the BotData.
func call(t *testing.T, method, u, tok, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var bd struct {
		Data json.RawMessage `json:"data"`
		ETag string          `json:"eTag"`
	}
	_ = json.Unmarshal(raw, &bd)
	return resp.StatusCode, string(bd.Data), bd.ETag
}

func TestTokenEndpoint(t *testing.T) {
	s, _ := start(t, nil)
	if tok, code := token(t, s, "wrong", DefaultScope); tok != "" || code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d %q", code, tok)
	}
	if tok, code := token(t, s, "secret", "https://graph.example.com/.default"); tok != "" ||
		code != http.StatusBadRequest {
		t.Errorf("wrong scope: %d %q", code, tok)
	}
	if tok, code := token(t, s, "secret", DefaultScope); tok == "" || code != http.StatusOK {
		t.Errorf("right secret: %d %q", code, tok)
	}
}

func TestStateRules(t *testing.T) {
	now := time.Now()
	s, rec := start(t, func() time.Time { return now })
	tok, _ := token(t, s, "secret", DefaultScope)

	if code, _, _ := call(t, "GET", rec, "forged", ""); code != http.StatusUnauthorized {
		t.Errorf("forged token: %d", code)
	}
	code, data, etag := call(t, "GET", rec, tok, "")
	if code != http.StatusOK || data != "null" || etag != "*" {
		t.Fatalf("new record: %d %s %q; want null data and *", code, data, etag)
	}

	// Every write makes a new eTag; "*" matches any; an old one is stale.
	_, _, e1 := call(t, "POST", rec, tok, `{"data":{"a":1},"eTag":"*"}`)
	_, _, e2 := call(t, "POST", rec, tok, `{"data":{"a":2},"eTag":`+quote(e1)+`}`)
	if e1 == e2 || e1 == "" || e2 == "" {
		t.Errorf("eTags %q, %q; want two new ones", e1, e2)
	}
	if code, _, _ := call(t, "POST", rec, tok, `{"data":{"a":3},"eTag":`+quote(e1)+`}`); code != 412 {
		t.Errorf("stale eTag: %d; want 412", code)
	}
	if code, _, _ := call(t, "POST", rec, tok, `{"data":{"a":3},"eTag":""}`); code != 412 {
		t.Errorf("no eTag: %d; want 412", code)
	}
	if code, _, _ := call(t, "POST", rec, tok, `{"data":{"a":4},"eTag":"*"}`); code != 200 {
		t.Errorf("wildcard: %d; want 200", code)
	}

	// The data is at most 32 KB, and a JSON object.
	big := `{"data":{"x":"` + strings.Repeat("x", MaxData) + `"},"eTag":"*"}`
	if code, _, _ := call(t, "POST", rec, tok, big); code != http.StatusBadRequest {
		t.Errorf("%d bytes: %d; want 400", len(big), code)
	}
	if code, _, _ := call(t, "POST", rec, tok, `{"data":[1],"eTag":"*"}`); code != 400 {
		t.Errorf("a list: %d; want 400", code)
	}

	// Records are kept per path, and the path's IDs are unescaped.
	if data, _ := s.Record(Bag{"ch", "c/1", "u"}); string(data["a"]) != "4" {
		t.Errorf("record = %s", data)
	}
	if _, _, etag := call(t, "GET", s.URL+"/v3/botstate/ch/users/u", tok, ""); etag != "*" {
		t.Errorf("user data shares the private record: eTag %q", etag)
	}

	// Tokens expire.
	now = now.Add(2 * time.Hour)
	if code, _, _ := call(t, "GET", rec, tok, ""); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d", code)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
