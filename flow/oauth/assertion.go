package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// A client with a ClientKey proves who it is at the token endpoint with a
// JWT it signs, the client assertion, instead of a secret: RFC 7523,
// sections 2.2 and 3, which OpenID Connect Core 1.0, section 9, names
// private_key_jwt. Microsoft Entra ID's certificate credentials are such
// assertions, with the certificate's thumbprint in the header.

// Signature algorithms of client assertions.
const (
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgES256 = "ES256"
)

const (
	// assertionType is the client_assertion_type of a JWT assertion.
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionLife is how long an assertion may be used. One is signed
	// for each request, so a few minutes cover any clock skew; Entra
	// advises at most 10.
	assertionLife = 5 * time.Minute
	// methodPrivateKeyJWT is how discovery documents name the method.
	methodPrivateKeyJWT = "private_key_jwt"
)

// assertion signs a client's assertions.
type assertion struct {
	method jwt.SigningMethod
	key    crypto.Signer
	// header holds kid, x5t and x5t#S256, those that are configured.
	header map[string]string
}

// newAssertion checks the client key, its algorithm and its certificate.
func newAssertion(cfg *Config) (*assertion, error) {
	method, err := assertionMethod(cfg.ClientKey.Public(), cfg.ClientKeyAlg)
	if err != nil {
		return nil, err
	}
	a := &assertion{method: method, key: cfg.ClientKey, header: map[string]string{}}
	if cfg.ClientKeyID != "" {
		a.header["kid"] = cfg.ClientKeyID
	}

	cert := cfg.ClientCertificate
	if cert == nil {
		return a, nil
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cfg.ClientKey.Public()) {
		return nil, errors.New("the client certificate is not that of the client key")
	}
	// The thumbprints name the certificate; SHA-1 serves only as a name
	// here, for providers that know x5t alone.
	sum1, sum256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	a.header["x5t"] = base64.RawURLEncoding.EncodeToString(sum1[:])
	a.header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum256[:])
	return a, nil
}

// assertionMethod returns the method signing with alg for a key of pub's
// type, or with the type's default algorithm when alg is empty.
func assertionMethod(pub crypto.PublicKey, alg string) (jwt.SigningMethod, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return nil, fmt.Errorf("an RSA client key needs at least 2048 bits, not %d", n)
		}
		switch alg {
		case "", AlgRS256:
			return &signerMethod{alg: AlgRS256, opts: crypto.SHA256}, nil
		case AlgPS256:
			return &signerMethod{alg: AlgPS256, opts: &rsa.PSSOptions{
				SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256,
			}}, nil
		}
		return nil, fmt.Errorf("an RSA client key signs with RS256 or PS256, not %q", alg)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an ECDSA client key must be on P-256, not %s",
				k.Curve.Params().Name)
		}
		if alg != "" && alg != AlgES256 {
			return nil, fmt.Errorf("an ECDSA P-256 client key signs with ES256, not %q", alg)
		}
		return &signerMethod{alg: AlgES256, opts: crypto.SHA256, ecdsa: true}, nil
	}
	return nil, fmt.Errorf("a client key of type %T is not supported: "+
		"use RSA of 2048 bits or more, or ECDSA P-256", pub)
}

// sign returns an assertion for one request to the token endpoint aud.
func (a *assertion) sign(clientID, aud, jti string, now time.Time) (string, error) {
	tok := jwt.NewWithClaims(a.method, jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": aud, "jti": jti,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	})
	for name, value := range a.header {
		tok.Header[name] = value
	}
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("signing client assertion: %w", err)
	}
	return s, nil
}

// clientAuth returns the token request's parameters that authenticate a
// client with a key. A client secret needs none: oauth2.Config sends it.
func (p *Provider) clientAuth(tokenURL string) ([]oauth2.AuthCodeOption, error) {
	if p.assertion == nil {
		return nil, nil
	}
	s, err := p.assertion.sign(p.clientID, tokenURL, random(p.rand), p.now())
	if err != nil {
		return nil, err
	}
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", assertionType),
		oauth2.SetAuthURLParam("client_assertion", s),
	}, nil
}

// signerMethod signs with any crypto.Signer, so that a key held in hardware
// or by a key service signs as a key in memory does; jwt's own methods take
// keys in memory only. It verifies nothing: the provider does.
type signerMethod struct {
	alg  string
	opts crypto.SignerOpts
	// ecdsa turns the signer's ASN.1 signature into the JWS form.
	ecdsa bool
}

func (m *signerMethod) Alg() string { return m.alg }

func (m *signerMethod) Sign(signingString string, key any) ([]byte, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, jwt.ErrInvalidKeyType
	}
	sum := sha256.Sum256([]byte(signingString))
	sig, err := signer.Sign(rand.Reader, sum[:], m.opts)
	if err != nil || !m.ecdsa {
		return sig, err
	}
	return jwsECDSA(sig)
}

func (m *signerMethod) Verify(string, []byte, any) error {
	return errors.New("oauth: client assertions are verified by the provider")
}

// jwsECDSA turns an ASN.1 ECDSA P-256 signature into the 64 bytes r || s of
// JWS (RFC 7518, section 3.4).
func jwsECDSA(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) > 0 || !fits(sig.R) || !fits(sig.S) {
		return nil, errors.New("oauth: the client key made a malformed ECDSA signature")
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

// fits reports whether n is a positive number of at most 256 bits.
func fits(n *big.Int) bool { return n.Sign() > 0 && n.BitLen() <= 256 }

// ParseClientCertificate reads the first certificate of PEM data. Other
// blocks, such as a private key, are skipped.
func ParseClientCertificate(data []byte) (*x509.Certificate, error) {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		return cert, nil
	}
	return nil, errors.New("no PEM certificate found")
}
