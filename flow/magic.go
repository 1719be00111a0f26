package flow

import (
	"crypto/rand"
	"fmt"
	"html"
	"io"
	"math/big"
	"regexp"
	"strings"
)

// Limits on magic numbers.
const (
	MinDigits     = 6
	MaxDigits     = 12
	DefaultDigits = 6
	// maxCodeInput bounds what the verify API reads as a code, in bytes.
	maxCodeInput = 1024
)

// NewCode returns a magic number of the given number of digits, uniformly
// distributed: crypto/rand.Int draws by rejection, so there is no modulo bias.
func NewCode(rnd io.Reader, digits int) (string, error) {
	if digits < MinDigits || digits > MaxDigits {
		return "", fmt.Errorf("magic number digits must be %d to %d, not %d",
			MinDigits, MaxDigits, digits)
	}

	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)
	n, err := rand.Int(rnd, limit)
	if err != nil {
		return "", fmt.Errorf("drawing magic number: %w", err)
	}
	s := n.String()
	return strings.Repeat("0", digits-len(s)) + s, nil
}

// mentionPattern matches the mention markup Teams and Web Chat put around a
// bot's name; the name may hold digits, so it goes before digits are read.
var mentionPattern = regexp.MustCompile(`(?is)<at\b[^>]*>.*?</at>`)

// tagPattern matches any other markup tag.
var tagPattern = regexp.MustCompile(`(?s)<[^>]*>`)

// NormalizeCode returns the digits a user pasted, without the rich text some
// channels add (mentions, paragraphs, entities, spaces, dashes). It returns
// "" when the input is too long to be a pasted code.
func NormalizeCode(s string) string {
	if len(s) > maxCodeInput {
		return ""
	}
	if strings.IndexByte(s, '<') >= 0 {
		s = mentionPattern.ReplaceAllString(s, " ")
		s = tagPattern.ReplaceAllString(s, " ")
	}
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}

	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// GroupCode splits a code into groups of three for reading: "123 456".
func GroupCode(code string) string {
	if len(code) <= 4 {
		return code
	}
	var b strings.Builder
	for i, c := range code {
		if i > 0 && (len(code)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
