package flow_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

const aud = "https://example.com/handoff"

func verifier(t testing.TB, now time.Time, keys ...flow.LinkKey) *flow.Verifier {
	t.Helper()
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: keys, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func secretPair(t testing.TB, id string) (flow.LinkKey, flow.Signer) {
	t.Helper()
	k, err := flow.SecretKey(id, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	s, err := flow.SecretSigner(id, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

// keyPair returns a verification key and signer from a private key.
func keyPair(t *testing.T, priv any) (flow.LinkKey, flow.Signer) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	k, err := flow.PublicKey("", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := flow.PrivateKeySigner("", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func link(now time.Time) flow.Link {
	return flow.Link{Flow: "checkout", Ref: ref, Audience: aud, Now: now, TTL: 10 * time.Minute}
}

func TestLinkKeysAndAlgorithms(t *testing.T) {
	now := time.Now()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)

	for _, priv := range []any{edPriv, ecPriv, rsaPriv} {
		k, s := keyPair(t, priv)
		tok, err := s.SignLink(link(now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifier(t, now, k).Link(tok, aud); err != nil {
			t.Errorf("%s link refused: %v", k.Alg(), err)
		}
	}
}

func TestLinkRefusals(t *testing.T) {
	now := time.Now()
	key, signer := secretPair(t, "")
	v := verifier(t, now, key)
	good, _ := signer.SignLink(link(now))

	// An RS256 token whose "public key" is the HMAC secret: the classic
	// confusion; and a token with alg none.
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, rsaSigner := keyPair(t, rsaPriv)
	rsaTok, _ := rsaSigner.SignLink(link(now))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"aud": aud, "exp": now.Add(time.Minute).Unix()})
	none.Header["typ"] = flow.TypeLink
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	other, _ := flow.SecretSigner("", []byte("another-secret-another-secret-another"))
	otherTok, _ := other.SignLink(link(now))
	apiTok, _ := signer.SignAPI(flow.APIToken{Audience: aud, Now: now})
	longL := link(now)
	longL.TTL = time.Hour
	longTok, _ := signer.SignLink(longL)
	oldL := link(now.Add(-time.Hour))
	oldTok, _ := signer.SignLink(oldL)
	wrongAud := link(now)
	wrongAud.Audience = "https://evil.example/handoff"
	wrongAudTok, _ := signer.SignLink(wrongAud)

	cases := []struct {
		name, token string
		want        error
	}{
		{"tampered", good[:len(good)-2] + "xx", flow.ErrBadToken},
		{"alg none", noneTok, flow.ErrBadToken},
		{"RS256 with no RSA key", rsaTok, flow.ErrBadToken},
		{"other secret", otherTok, flow.ErrBadToken},
		{"API token as link", apiTok, flow.ErrBadToken},
		{"lives too long", longTok, flow.ErrBadToken},
		{"expired", oldTok, flow.ErrTokenExpired},
		{"wrong audience", wrongAudTok, flow.ErrBadToken},
		{"garbage", "not-a-token", flow.ErrBadToken},
		{"huge", strings.Repeat("a", flow.MaxTokenLen+1), flow.ErrBadToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := v.Link(c.token, aud); !errors.Is(err, c.want) {
				t.Errorf("got %v; want %v", err, c.want)
			}
		})
	}
	if _, err := v.Link(good, aud); err != nil {
		t.Errorf("good link refused: %v", err)
	}
	if _, err := v.API(good, aud); !errors.Is(err, flow.ErrBadToken) {
		t.Errorf("link as API token: %v; want ErrBadToken", err)
	}
}

func TestLinkClaimsRequired(t *testing.T) {
	now := time.Now()
	key, _ := secretPair(t, "")
	v := verifier(t, now, key)
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["typ"] = flow.TypeLink
		s, _ := tok.SignedString(testSecret)
		return s
	}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{
			"aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j1",
			"flow": "checkout",
			"ref": map[string]any{"channelId": "msteams", "serviceUrl": "https://s.example/",
				"conversation": map[string]any{"id": "c"}, "user": map[string]any{"id": "u"}},
		}
	}
	if _, err := v.Link(sign(base()), aud); err != nil {
		t.Fatalf("complete claims refused: %v", err)
	}
	for _, drop := range []string{"aud", "iat", "exp", "jti", "flow", "ref"} {
		c := base()
		delete(c, drop)
		if _, err := v.Link(sign(c), aud); err == nil {
			t.Errorf("link without %s accepted", drop)
		}
	}
	c := base()
	c["ref"].(map[string]any)["user"] = map[string]any{"id": "u\r\nX-Injected: 1"}
	if _, err := v.Link(sign(c), aud); err == nil {
		t.Error("user ID with a line break accepted")
	}
	c = base()
	c["data"] = []int{1}
	if _, err := v.Link(sign(c), aud); err == nil {
		t.Error("non-object data accepted")
	}
}

func TestKeyRotationByKid(t *testing.T) {
	now := time.Now()
	oldKey, oldSigner := secretPair(t, "old")
	newSecret := []byte("the-new-secret-the-new-secret-the-new")
	newKey, _ := flow.SecretKey("new", newSecret)
	newSigner, _ := flow.SecretSigner("new", newSecret)
	v := verifier(t, now, oldKey, newKey)

	for _, s := range []flow.Signer{oldSigner, newSigner} {
		tok, _ := s.SignLink(link(now))
		if _, err := v.Link(tok, aud); err != nil {
			t.Errorf("key %s refused: %v", s.KeyID, err)
		}
	}
	// A token naming the old kid but signed with the new secret is refused.
	forged, _ := flow.SecretSigner("old", newSecret)
	tok, _ := forged.SignLink(link(now))
	if _, err := v.Link(tok, aud); err == nil {
		t.Error("token checked with a key of another kid")
	}
}

func TestWeakKeysRefused(t *testing.T) {
	if _, err := flow.SecretKey("", []byte("short")); err == nil {
		t.Error("short secret accepted")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if _, err := flow.PublicKey("", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil {
		t.Error("1024-bit RSA key accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if _, err := flow.PublicKey("", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil {
		t.Error("P-384 key accepted for ES256")
	}
}
