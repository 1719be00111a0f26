package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Client keys of the tests, made once: RSA keys are slow to make.
var (
	clientRSA   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	otherRSA    = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	clientECDSA = sync.OnceValue(func() *ecdsa.PrivateKey { return mustECDSA(elliptic.P256()) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustECDSA(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// certificateOf returns a self-signed certificate of key, as an operator
// makes one to upload to Entra.
func certificateOf(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bot-handoff client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// opaqueSigner hides the key's type, as a key in hardware does.
type opaqueSigner struct{ crypto.Signer }

func TestClientKeySignsIn(t *testing.T) {
	cases := []struct {
		name     string
		key      crypto.Signer
		alg      string
		wantAlg  string
		withCert bool
		kid      string
	}{
		{name: "RSA with certificate", key: clientRSA(), wantAlg: "RS256", withCert: true},
		{name: "RSA PS256", key: clientRSA(), alg: "PS256", wantAlg: "PS256", withCert: true},
		{name: "RSA without certificate", key: clientRSA(), wantAlg: "RS256", kid: "key-1"},
		{name: "ECDSA with certificate", key: clientECDSA(), wantAlg: "ES256", withCert: true},
		{name: "ECDSA without certificate", key: clientECDSA(), wantAlg: "ES256"},
		{name: "opaque RSA signer", key: opaqueSigner{clientRSA()}, wantAlg: "RS256"},
		{name: "opaque ECDSA signer", key: opaqueSigner{clientECDSA()}, wantAlg: "ES256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{ClientKey: c.key, ClientKeyAlg: c.alg, ClientKeyID: c.kid}
			reg := &clientRegistration{pub: c.key.Public(), alg: c.wantAlg}
			if c.withCert {
				cfg.ClientCertificate = certificateOf(t, c.key)
				reg.cert = cfg.ClientCertificate
			}
			h, idp := oidcHarness(t, cfg)
			idp.set(func(f *fakeIdP) { f.client = reg })

			// Two sign-ins: each exchange carries its own assertion.
			h.result(h.callback(idp.authorize(h.begin())))
			h.f.State = nil
			h.result(h.callback(idp.authorize(h.begin())))

			raws := idp.sentAssertions()
			if len(raws) != 2 || raws[0] == raws[1] {
				t.Fatalf("assertions = %q; want two different ones", raws)
			}
			checkAssertionShape(t, h, idp, raws[0], c.wantAlg, c.kid, cfg.ClientCertificate)
		})
	}
}

// checkAssertionShape checks an assertion's header and claims as sent.
func checkAssertionShape(t *testing.T, h *harness, idp *fakeIdP, raw, alg, kid string,
	cert *x509.Certificate) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	if err != nil {
		t.Fatal(err)
	}
	wantKid := any(nil)
	if kid != "" {
		wantKid = kid
	}
	if tok.Header["alg"] != alg || tok.Header["typ"] != "JWT" || tok.Header["kid"] != wantKid {
		t.Errorf("header = %v; want alg %s, kid %q", tok.Header, alg, kid)
	}
	if cert != nil {
		sum := sha256.Sum256(cert.Raw)
		if tok.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) ||
			tok.Header["x5t"] == nil {
			t.Errorf("header = %v; want the certificate's thumbprints", tok.Header)
		}
	} else if tok.Header["x5t"] != nil || tok.Header["x5t#S256"] != nil {
		t.Errorf("header names a certificate there is none of: %v", tok.Header)
	}

	now := float64(h.now.Unix())
	want := map[string]any{
		"iss": testClientID, "sub": testClientID, "aud": idp.srv.URL + "/token",
		"iat": now, "nbf": now, "exp": now + 300,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v; want %v", k, claims[k], v)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) < 32 {
		t.Errorf("jti = %q; want a random one", jti)
	}
}

func TestClientKeyRefusedFailsTheExchange(t *testing.T) {
	// The provider holds another key of the client than the one it signs
	// with, as after a certificate rotation done at one end only.
	h, idp := oidcHarness(t, Config{ClientKey: clientRSA(),
		ClientCertificate: certificateOf(t, clientRSA())})
	other := otherRSA()
	idp.set(func(f *fakeIdP) {
		f.client = &clientRegistration{pub: other.Public(), alg: "RS256",
			cert: certificateOf(t, other)}
	})

	out, err := h.callback(idp.authorize(h.begin()))
	wantFailure(t, out, err, FailExchange)
	raws := idp.sentAssertions()
	if len(raws) != 1 || !strings.Contains(h.logs.String(), "invalid_client") ||
		strings.Contains(h.logs.String(), raws[0]) {
		t.Errorf("log should name invalid_client and never the assertion: %s", h.logs)
	}
}

// TestFakeChecksAssertions shows that the fake's token endpoint refuses
// what a real one refuses, so the tests above prove something.
func TestFakeChecksAssertions(t *testing.T) {
	cert := certificateOf(t, clientRSA())
	h, idp := oidcHarness(t, Config{ClientKey: clientRSA(), ClientCertificate: cert})
	idp.set(func(f *fakeIdP) {
		f.client = &clientRegistration{pub: clientRSA().Public(), alg: "RS256", cert: cert}
	})
	tokenURL := idp.srv.URL + "/token"
	good := h.p.assertion
	sign := func(a *assertion, iss, aud, jti string, at time.Time) string {
		s, err := a.sign(iss, aud, jti, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noCert, _ := newAssertion(&Config{ClientKey: clientRSA()})
	pss, _ := newAssertion(&Config{ClientKey: clientRSA(), ClientKeyAlg: "PS256",
		ClientCertificate: cert})
	replayed := sign(good, testClientID, tokenURL, "jti-replayed", h.now)

	cases := []struct {
		name      string
		assertion string
		extra     url.Values
		status    int
	}{
		{"valid", replayed, nil, http.StatusOK},
		{"replayed jti", replayed, nil, http.StatusUnauthorized},
		{"secret alongside", sign(good, testClientID, tokenURL, "j1", h.now),
			url.Values{"client_secret": {testClientSecret}}, http.StatusUnauthorized},
		{"another issuer", sign(good, "someone-else", tokenURL, "j2", h.now), nil,
			http.StatusUnauthorized},
		{"another audience", sign(good, testClientID, idp.srv.URL, "j3", h.now), nil,
			http.StatusUnauthorized},
		{"expired", sign(good, testClientID, tokenURL, "j4", h.now.Add(-6*time.Minute)), nil,
			http.StatusUnauthorized},
		{"not yet valid", sign(good, testClientID, tokenURL, "j5", h.now.Add(time.Minute)), nil,
			http.StatusUnauthorized},
		{"no certificate", sign(noCert, testClientID, tokenURL, "j6", h.now), nil,
			http.StatusUnauthorized},
		{"another algorithm", sign(pss, testClientID, tokenURL, "j7", h.now), nil,
			http.StatusUnauthorized},
		{"no jti", sign(good, testClientID, tokenURL, "", h.now), nil, http.StatusUnauthorized},
	}
	for _, c := range cases {
		h.f.State = nil
		code := idp.authorize(h.begin()).Query().Get("code")
		st, _ := openState(h.f.State)
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "client_id": {testClientID},
			"redirect_uri": {st.Redirect}, "code_verifier": {st.Verifier},
			"client_assertion_type": {assertionType}, "client_assertion": {c.assertion},
		}
		for k, v := range c.extra {
			form[k] = v
		}
		resp, err := http.PostForm(tokenURL, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d; want %d", c.name, resp.StatusCode, c.status)
		}
	}
}

func TestClientKeyWarnsWhenTheProviderDoesNotListIt(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		cfg := Config{}
		if keyed {
			cfg.ClientKey = clientECDSA()
		}
		h, idp := oidcHarness(t, cfg)
		idp.set(func(f *fakeIdP) { f.authMethods = []string{"client_secret_post"} })
		if _, err := h.p.Begin(context.Background(), h.f); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(h.logs.String(), "private_key_jwt"); warned != keyed {
			t.Errorf("client key %v: warned %v; log: %s", keyed, warned, h.logs)
		}
	}
}

func TestNewRefusesBadClientKey(t *testing.T) {
	rsaCert := certificateOf(t, clientRSA())
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := map[string]Config{
		"secret and key":        {ClientSecret: "s", ClientKey: clientRSA()},
		"neither":               {},
		"short RSA":             {ClientKey: mustRSA(1024)},
		"P-384":                 {ClientKey: mustECDSA(elliptic.P384())},
		"Ed25519":               {ClientKey: edKey},
		"ES256 for RSA":         {ClientKey: clientRSA(), ClientKeyAlg: "ES256"},
		"PS256 for ECDSA":       {ClientKey: clientECDSA(), ClientKeyAlg: "PS256"},
		"HS256":                 {ClientKey: clientRSA(), ClientKeyAlg: "HS256"},
		"another's cert":        {ClientKey: otherRSA(), ClientCertificate: rsaCert},
		"ECDSA with RSA cert":   {ClientKey: clientECDSA(), ClientCertificate: rsaCert},
		"cert without key":      {ClientSecret: "s", ClientCertificate: rsaCert},
		"key ID without key":    {ClientSecret: "s", ClientKeyID: "k1"},
		"algorithm without key": {ClientSecret: "s", ClientKeyAlg: "RS256"},
		"entra without cert":    {Preset: PresetEntra, Tenant: tenantA, ClientKey: clientRSA()},
		"github with a key":     {Preset: PresetGitHub, ClientKey: clientECDSA()},
	}
	for name, cfg := range cases {
		cfg.ClientID = "id"
		cfg.Preset = or(cfg.Preset, PresetGoogle)
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v; want ErrConfig", name, err)
		}
	}

	if _, err := New(Config{Preset: PresetGoogle, ClientID: "id", ClientKey: clientRSA(),
		ClientCertificate: rsaCert, ClientKeyAlg: "PS256", ClientKeyID: "k1"}); err != nil {
		t.Errorf("a good client key: %v", err)
	}
}

func TestParsePrivateKeyAndCertificate(t *testing.T) {
	pkcs1 := x509.MarshalPKCS1PrivateKey(clientRSA())
	pkcs8RSA, _ := x509.MarshalPKCS8PrivateKey(clientRSA())
	pkcs8EC, _ := x509.MarshalPKCS8PrivateKey(clientECDSA())
	sec1, _ := x509.MarshalECPrivateKey(clientECDSA())
	cert := certificateOf(t, clientECDSA())
	block := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}

	keys := map[string]struct {
		pem  string
		want crypto.PublicKey
	}{
		"PKCS #8 RSA": {block("PRIVATE KEY", pkcs8RSA), clientRSA().Public()},
		"PKCS #1":     {block("RSA PRIVATE KEY", pkcs1), clientRSA().Public()},
		"PKCS #8 EC":  {block("PRIVATE KEY", pkcs8EC), clientECDSA().Public()},
		"SEC 1":       {block("EC PRIVATE KEY", sec1), clientECDSA().Public()},
		"after the certificate": {block("CERTIFICATE", cert.Raw) + block("EC PRIVATE KEY", sec1),
			clientECDSA().Public()},
	}
	for name, c := range keys {
		k, err := flow.ParsePrivateKeyPEM([]byte(c.pem))
		if err != nil || !c.want.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Errorf("%s: key %v, %v", name, k, err)
		}
	}
	for name, data := range map[string]string{
		"empty":       "",
		"certificate": block("CERTIFICATE", cert.Raw),
		"encrypted":   block("ENCRYPTED PRIVATE KEY", []byte{1}),
		"garbage":     block("PRIVATE KEY", []byte("not DER")),
	} {
		if _, err := flow.ParsePrivateKeyPEM([]byte(data)); err == nil {
			t.Errorf("%s: parsed as a key", name)
		}
	}

	both := block("EC PRIVATE KEY", sec1) + block("CERTIFICATE", cert.Raw)
	got, err := ParseClientCertificate([]byte(both))
	if err != nil || !got.Equal(cert) {
		t.Errorf("certificate after the key: %v, %v", got, err)
	}
	if _, err := ParseClientCertificate([]byte(block("EC PRIVATE KEY", sec1))); err == nil {
		t.Error("a key parsed as a certificate")
	}
}

// TestClientKeyGoesInTheBody covers the providers whose secret goes in a
// header: explicit endpoints, where x/oauth2 would try the header first and
// then send the same assertion again, and a discovery document without
// client_secret_post.
func TestClientKeyGoesInTheBody(t *testing.T) {
	reg := &clientRegistration{pub: clientECDSA().Public(), alg: "ES256"}
	t.Run("explicit endpoints", func(t *testing.T) {
		var h *harness
		idp := newFakeIdP(t, func() time.Time { return h.now })
		idp.set(func(f *fakeIdP) { f.client = reg })
		h = newHarness(t, Config{AuthURL: idp.srv.URL + "/authorize",
			TokenURL: idp.srv.URL + "/token", ClientKey: clientECDSA()})
		h.result(h.callback(idp.authorize(h.begin())))
		if n := idp.count(&idp.exchanges); n != 1 {
			t.Errorf("%d token requests; want 1", n)
		}
	})
	t.Run("discovery without client_secret_post", func(t *testing.T) {
		h, idp := oidcHarness(t, Config{ClientKey: clientECDSA()})
		idp.set(func(f *fakeIdP) {
			f.client, f.authMethods = reg, []string{"client_secret_basic", "private_key_jwt"}
		})
		h.result(h.callback(idp.authorize(h.begin())))
	})
}
