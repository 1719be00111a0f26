package flow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// MinStateKeyLen is the shortest master secret a Keyring accepts, in bytes.
const MinStateKeyLen = 32

// A Keyring holds the handler's own secrets, all derived from one master
// secret: an AES-256-GCM key that seals tokens and results at rest, and an
// HMAC key for magic numbers, browser cookies and store keys.
//
// Every instance serving the same flows must have the same master secret.
type Keyring struct {
	aead cipher.AEAD
	mac  []byte
	// macs holds keyed HMAC states for reuse: keying one costs two SHA-256
	// blocks and a few allocations, and every request takes several MACs.
	macs sync.Pool
}

// NewKeyring derives a Keyring from master with HKDF-SHA256.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) < MinStateKeyLen {
		return nil, fmt.Errorf("state key is %d bytes; at least %d are required",
			len(master), MinStateKeyLen)
	}

	sealKey, err := hkdf.Key(sha256.New, master, nil, "bothandoff seal v1", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving seal key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, master, nil, "bothandoff mac v1", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving mac key: %w", err)
	}

	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating GCM: %w", err)
	}
	k := &Keyring{aead: aead, mac: macKey}
	k.macs.New = func() any { return hmac.New(sha256.New, k.mac) }
	return k, nil
}

// Seal encrypts plaintext, binding it to context (for example a flow ID) so
// a sealed value cannot be moved to another record. The nonce is read from
// rnd.
func (k *Keyring) Seal(rnd io.Reader, plaintext []byte, context string) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, nil
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("reading nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, []byte(context)), nil
}

// errUnseal hides why opening failed: a wrong key and a tampered value look
// the same to an attacker.
var errUnseal = errors.New("flow: sealed value cannot be opened")

// Open decrypts a value made by Seal with the same context.
func (k *Keyring) Open(sealed []byte, context string) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, errUnseal
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errUnseal
	}
	return out, nil
}

// MAC returns HMAC-SHA256 over the parts, each length-prefixed so that
// ("ab","c") and ("a","bc") differ.
func (k *Keyring) MAC(parts ...string) []byte {
	h := k.macs.Get().(hash.Hash)
	defer k.macs.Put(h)
	h.Reset()

	var n [4]byte
	for _, p := range parts {
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		h.Write(n[:])
		io.WriteString(h, p)
	}
	return h.Sum(make([]byte, 0, sha256.Size))
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// RandomID returns 16 random bytes from crypto/rand, base64url-encoded.
func RandomID() string { return randomString(rand.Reader, 16) }

func randomString(rnd io.Reader, n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		// crypto/rand does not fail on supported platforms; an injected
		// reader that does is a broken test.
		panic(fmt.Sprintf("flow: reading randomness: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
