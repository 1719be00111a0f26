package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/oauth"
)

// entraKeyClient is the Entra app registration that authenticates with a
// certificate instead of a secret.
const entraKeyClient = "entra-key-client"

// clientCredential is an RSA key and its self-signed certificate, as one
// uploads to an Entra app registration, and the PEM files that hold them.
type clientCredential struct {
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	keyFile  string
	certFile string
}

// newClientCredential generates a credential valid for a day and writes
// its key and certificate to name.key and name.crt in dir.
func newClientCredential(t *testing.T, dir, name string) *clientCredential {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	// Self-signed, which Entra takes; CreateCertificate picks the serial.
	now := time.Now()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	c := &clientCredential{key: key, cert: cert,
		keyFile: filepath.Join(dir, name+".key"), certFile: filepath.Join(dir, name+".crt")}
	writePEM(t, c.keyFile, "PRIVATE KEY", pkcs8)
	writePEM(t, c.certFile, "CERTIFICATE", der)
	return c
}

func writePEM(t *testing.T, path, blockType string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newEntraKeyEnv starts the oauth environment with three more flows on the
// entra preset for entraKeyClient, which authenticate with a client key:
// entra_key signs with PS256, as Microsoft advises, and entra_key_rs with
// RS256, the default, both with the registered certificate's key;
// entra_stranger signs with another key, whose certificate the app
// registration does not hold.
func newEntraKeyEnv(t *testing.T) *oauthEnv {
	t.Helper()
	dir := t.TempDir()
	registered := newClientCredential(t, dir, "registered")
	stranger := newClientCredential(t, dir, "stranger")

	e := newOAuthEnv(t, entraKeyFlow("entra_key", registered, "PS256"),
		entraKeyFlow("entra_key_rs", registered, ""),
		entraKeyFlow("entra_stranger", stranger, ""))
	e.entra.registerCertificate(entraKeyClient, registered.cert)
	return e
}

// entraKeyFlow returns the oauth block of a flow signing its assertions
// with c's key and alg, or the default algorithm if alg is empty.
func entraKeyFlow(name string, c *clientCredential, alg string) func(*oauthEnv) string {
	key := c.keyFile
	if alg != "" {
		key += " alg " + alg
	}
	return func(e *oauthEnv) string {
		return fmt.Sprintf(`		oauth %s {
			preset entra contoso.onmicrosoft.com
			authority %s
			client_id %s
			client_key %s
			client_certificate %s
			scopes openid profile
		}
`, name, e.entra.srv.URL, entraKeyClient, key, c.certFile)
	}
}

func TestOAuthEntraCertificateSignIn(t *testing.T) {
	e := newEntraKeyEnv(t)

	// A sign-in per algorithm Entra takes; each exchange authenticates
	// with an assertion, and no secret.
	var tokens []string
	for i, name := range []string{"entra_key", "entra_key_rs"} {
		ref := refFor(fmt.Sprintf("kim%d", i))
		resp, body := newSignInBrowser(t).open(e.link(t, name, ref, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d: %s", name, resp.StatusCode, body)
		}
		if st := e.status(t, ref); st != flow.StatusCompleted {
			t.Fatalf("%s: status = %s; want completed", name, st)
		}
		r := e.verify(t, ref, numberOn(t, body))
		if r.Provider != "entra" || r.AccessToken == "" || r.IDToken == "" ||
			r.Claims["aud"] != entraKeyClient || r.Claims["tid"] != contosoTenant ||
			r.Claims["oid"] != "oid-alice" {
			t.Errorf("%s: result = %+v", name, r)
		}
		tokens = append(tokens, r.AccessToken, r.IDToken)
	}
	if got := e.entra.clientAuths(); !slices.Equal(got, []string{"PS256", "RS256"}) {
		t.Errorf("client authentications = %v; want PS256, then RS256", got)
	}

	for _, ev := range e.hooks.waitEvents(t, 2) {
		if ev.Type != flow.EventCompleted || !strings.HasPrefix(ev.Flow, "entra_key") {
			t.Errorf("event = %+v; want handoff.completed", ev)
		}
	}
	assertNoSecrets(t, e.caddy.Logs(), tokens...)
}

func TestOAuthEntraUnregisteredCertificate(t *testing.T) {
	e := newEntraKeyEnv(t)
	judy := refFor("judy")

	// The key signs well, but Entra holds no certificate of it: the
	// exchange fails, and the flow with it.
	resp, body := newSignInBrowser(t).open(e.link(t, "entra_stranger", judy, nil))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "This did not work") ||
		codePattern.MatchString(body) {
		t.Fatalf("unregistered certificate: %d: %s", resp.StatusCode, body)
	}
	if st := e.status(t, judy); st != flow.StatusFailed {
		t.Errorf("status = %s; want failed", st)
	}
	evs := e.hooks.waitEvents(t, 1)
	if evs[0].Type != flow.EventFailed || evs[0].Flow != "entra_stranger" ||
		evs[0].Error != oauth.FailExchange {
		t.Errorf("event = %+v; want handoff.failed with %s", evs[0], oauth.FailExchange)
	}

	// The log names the refusal of the client, without Entra's text.
	waitLog(t, e.caddy, `"flow":"entra_stranger","status":401,"error":"invalid_client"`)
	if strings.Contains(e.caddy.Logs(), "AADSTS") {
		t.Errorf("the provider's error description was logged")
	}
	if got := e.entra.clientAuths(); len(got) != 0 {
		t.Errorf("client authentications = %v; want none", got)
	}
}

func TestOAuthEntraFakeChecksAssertions(t *testing.T) {
	f := newEntraFake(t, "entra-client", entraClientSecret)
	dir := t.TempDir()
	registered := newClientCredential(t, dir, "registered")
	stranger := newClientCredential(t, dir, "stranger")
	f.registerCertificate(entraKeyClient, registered.cert)
	c := newEntraCaller(t, f)

	// Both algorithms are taken, each assertion once.
	ps := c.sign(registered, registered.cert, jwt.SigningMethodPS256, nil)
	rs := c.sign(registered, registered.cert, jwt.SigningMethodRS256, nil)
	for _, a := range []string{ps, rs} {
		if st, ans := c.redeem(withAssertion(a)); st != http.StatusOK {
			t.Fatalf("a valid assertion: %d %+v", st, ans)
		}
	}

	claim := func(name string, v any) func(*jwt.Token) {
		return func(tok *jwt.Token) { tok.Claims.(jwt.MapClaims)[name] = v }
	}
	alongside := withAssertion(c.sign(registered, registered.cert, jwt.SigningMethodRS256, nil))
	alongside.Set("client_secret", entraClientSecret)
	cases := []struct {
		name  string
		creds url.Values
		want  string
	}{
		{"reused jti", withAssertion(ps), "already used"},
		{"wrong aud", withAssertion(c.sign(registered, registered.cert, jwt.SigningMethodRS256,
			claim("aud", f.srv.URL+"/common/oauth2/v2.0/token"))), "audience"},
		{"secret alongside", alongside, "both given"},
		{"unknown thumbprint", withAssertion(c.sign(stranger, stranger.cert,
			jwt.SigningMethodRS256, nil)), "not registered"},
		{"registered thumbprint, another key", withAssertion(c.sign(stranger, registered.cert,
			jwt.SigningMethodRS256, nil)), "signature validation"},
		{"another client as iss", withAssertion(c.sign(registered, registered.cert,
			jwt.SigningMethodRS256, claim("iss", "entra-client"))), "client_id"},
		{"lives an hour", withAssertion(c.sign(registered, registered.cert, jwt.SigningMethodRS256,
			claim("exp", time.Now().Add(time.Hour).Unix()))), "time range"},
		{"a secret, certificates only", url.Values{"client_secret": {entraClientSecret}},
			"Invalid client secret"},
	}
	for _, tc := range cases {
		st, ans := c.redeem(tc.creds)
		if st != http.StatusUnauthorized || ans.Error != "invalid_client" ||
			!strings.Contains(ans.Description, tc.want) {
			t.Errorf("%s: %d %+v; want 401 invalid_client with %q", tc.name, st, ans, tc.want)
		}
	}
	if got := f.clientAuths(); !slices.Equal(got, []string{"PS256", "RS256"}) {
		t.Errorf("client authentications = %v; want PS256, RS256", got)
	}
}

// entraCaller redeems codes at an entraFake as entraKeyClient.
type entraCaller struct {
	t        *testing.T
	endpoint string
	client   *http.Client
	jtis     int
}

const (
	callerRedirect = "http://127.0.0.1:1/handoff/callback"
	callerVerifier = "caller-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
)

func newEntraCaller(t *testing.T, f *entraFake) *entraCaller {
	f.set(func(f *entraFake) { f.redirect = callerRedirect })
	return &entraCaller{t: t, client: noRedirect(nil),
		endpoint: f.srv.URL + "/contoso.onmicrosoft.com/oauth2/v2.0"}
}

// code returns a new authorization code.
func (c *entraCaller) code() string {
	c.t.Helper()
	q := url.Values{"client_id": {entraKeyClient}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "redirect_uri": {callerRedirect},
		"code_challenge": {pkceS256(callerVerifier)}, "code_challenge_method": {"S256"}}
	resp, err := c.client.Get(c.endpoint + "/authorize?" + q.Encode())
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		c.t.Fatalf("no code: %d %q", resp.StatusCode, loc)
	}
	return code
}

// sign returns an assertion for the token endpoint, signed with signer's
// key and naming cert by its thumbprints, after change, if any.
func (c *entraCaller) sign(signer *clientCredential, cert *x509.Certificate,
	method jwt.SigningMethod, change func(*jwt.Token)) string {
	c.t.Helper()
	c.jtis++
	now := time.Now()
	tok := jwt.NewWithClaims(method, jwt.MapClaims{
		"iss": entraKeyClient, "sub": entraKeyClient, "aud": c.endpoint + "/token",
		"jti": fmt.Sprintf("jti-%d", c.jtis), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	})
	sum1, sum256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	tok.Header["x5t"] = base64.RawURLEncoding.EncodeToString(sum1[:])
	tok.Header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum256[:])
	if change != nil {
		change(tok)
	}

	s, err := tok.SignedString(signer.key)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// withAssertion returns the credentials of a request with assertion a.
func withAssertion(a string) url.Values {
	return url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {a}}
}

// entraAnswer is the token endpoint's answer, as far as the tests read it.
type entraAnswer struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// redeem redeems a new code with creds and returns the answer.
func (c *entraCaller) redeem(creds url.Values) (int, entraAnswer) {
	c.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {c.code()},
		"redirect_uri": {callerRedirect}, "code_verifier": {callerVerifier},
		"client_id": {entraKeyClient}}
	for k, v := range creds {
		form[k] = v
	}
	resp, err := c.client.PostForm(c.endpoint+"/token", form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans entraAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, ans
}
