package flow

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest shared secret a link key may have, in bytes.
const MinSecretLen = 32

// minRSABits is the smallest RSA modulus accepted for a bot's public key.
const minRSABits = 2048

// A LinkKey is a key the handler accepts bot tokens signed with. Each key
// allows exactly one algorithm, so a token cannot choose how it is checked.
type LinkKey struct {
	// ID matches the token header's kid, if both are set.
	ID  string
	alg string
	key any
}

// Alg returns the one JWS algorithm the key allows.
func (k LinkKey) Alg() string { return k.alg }

// SecretKey returns an HS256 key from a shared secret of at least
// MinSecretLen bytes.
func SecretKey(id string, secret []byte) (LinkKey, error) {
	if len(secret) < MinSecretLen {
		return LinkKey{}, fmt.Errorf("link secret is %d bytes; at least %d are required",
			len(secret), MinSecretLen)
	}
	return LinkKey{ID: id, alg: jwt.SigningMethodHS256.Alg(), key: secret}, nil
}

// PublicKey returns a key from a PEM public key or certificate: Ed25519
// (EdDSA), ECDSA P-256 (ES256) or RSA of 2048 bits or more (RS256).
func PublicKey(id string, pemBytes []byte) (LinkKey, error) {
	pub, err := parsePublicPEM(pemBytes)
	if err != nil {
		return LinkKey{}, err
	}
	alg, err := algFor(pub)
	if err != nil {
		return LinkKey{}, err
	}
	return LinkKey{ID: id, alg: alg, key: pub}, nil
}

func parsePublicPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found in public key")
	}

	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		return cert.PublicKey, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing RSA public key: %w", err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

func algFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("only the P-256 curve (ES256) is accepted for ECDSA keys")
		}
		return jwt.SigningMethodES256.Alg(), nil
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key has %d bits; at least %d are required",
				k.N.BitLen(), minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// A Signer signs link and API tokens: the bot's side of a LinkKey.
type Signer struct {
	// KeyID is written as the token header's kid when set.
	KeyID  string
	method jwt.SigningMethod
	key    any
}

// SecretSigner signs with HS256 and a shared secret.
func SecretSigner(id string, secret []byte) (Signer, error) {
	if len(secret) < MinSecretLen {
		return Signer{}, fmt.Errorf("link secret is %d bytes; at least %d are required",
			len(secret), MinSecretLen)
	}
	return Signer{KeyID: id, method: jwt.SigningMethodHS256, key: secret}, nil
}

// PrivateKeySigner signs with a PEM private key (PKCS#8, or SEC 1 for EC,
// or PKCS#1 for RSA), choosing EdDSA, ES256 or RS256 from the key.
func PrivateKeySigner(id string, pemBytes []byte) (Signer, error) {
	priv, err := ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		return Signer{}, err
	}

	pub := priv.(interface{ Public() crypto.PublicKey }).Public()
	alg, err := algFor(pub)
	if err != nil {
		return Signer{}, err
	}
	return Signer{KeyID: id, method: jwt.GetSigningMethod(alg), key: priv}, nil
}

// ParsePrivateKeyPEM reads the first private key of PEM data: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// Other blocks, such as certificates, are skipped, so one file may hold a
// key and its certificate. Callers check that the key's type suits them.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; give it decrypted")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a private key of type %T cannot sign", key)
		}
		return signer, nil
	}
	return nil, errors.New("no PEM private key found")
}
