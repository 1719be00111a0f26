package payment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/currency"
)

// Limits on the link's data.
const (
	// MaxAmount is the largest amount Stripe takes in one payment, in
	// minor units (999,999.99 in a currency with cents).
	MaxAmount = 99_999_999
	// maxDescription bounds the description, which Stripe shows as the
	// product's name.
	maxDescription = 250
	// maxOrderID bounds the order ID, kept in Stripe metadata.
	maxOrderID = 200
)

// Data is what the bot signs into a payment link's data.
type Data struct {
	// Amount is in the currency's minor unit: 1999 is 19.99 EUR, and 500
	// is 500 JPY.
	Amount int64 `json:"amount"`
	// Currency is an ISO 4217 code, kept in lower case as Stripe writes it.
	Currency string `json:"currency"`
	// Description is what the user is paying for, shown on the checkout.
	Description string `json:"description"`
	// OrderID is the bot's reference for the payment, given back in the
	// result.
	OrderID string `json:"orderId"`
}

// ValidateData implements flow.Validator: a link whose data is missing or
// malformed is refused before any flow or session is made.
func (s *Stripe) ValidateData(raw json.RawMessage) error {
	_, err := ParseData(raw)
	return err
}

// ParseData reads and checks a payment link's data. Every field is
// required; other keys are ignored.
func ParseData(raw json.RawMessage) (*Data, error) {
	var in struct {
		Amount      json.RawMessage `json:"amount"`
		Currency    *string         `json:"currency"`
		Description *string         `json:"description"`
		OrderID     *string         `json:"orderId"`
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: data must be an object with amount, currency, "+
			"description and orderId", ErrBadData)
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("%w: decoding data: %w", ErrBadData, err)
	}

	d := &Data{}
	var err error
	if d.Amount, err = parseAmount(in.Amount); err != nil {
		return nil, err
	}
	if d.Currency, err = parseCurrency(in.Currency); err != nil {
		return nil, err
	}
	if d.Description, err = text("description", in.Description, maxDescription); err != nil {
		return nil, err
	}
	if d.OrderID, err = text("orderId", in.OrderID, maxOrderID); err != nil {
		return nil, err
	}
	return d, nil
}

// parseAmount reads a positive whole number of minor units. A string, a
// fraction or an exponent is refused: "19.99" in a link is a mistake that
// must not become 19 or 1999.
func parseAmount(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("%w: amount is required", ErrBadData)
	}
	s := string(raw)
	if strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: amount must be a whole number of minor units", ErrBadData)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > MaxAmount {
		return 0, fmt.Errorf("%w: amount must be 1 to %d minor units", ErrBadData, MaxAmount)
	}
	return n, nil
}

// parseCurrency reads an ISO 4217 code in any case.
func parseCurrency(s *string) (string, error) {
	if s == nil || *s == "" {
		return "", fmt.Errorf("%w: currency is required", ErrBadData)
	}
	if len(*s) != 3 {
		return "", fmt.Errorf("%w: currency must be a three-letter ISO 4217 code", ErrBadData)
	}
	if _, err := currency.ParseISO(*s); err != nil {
		return "", fmt.Errorf("%w: currency is not an ISO 4217 code", ErrBadData)
	}
	return strings.ToLower(*s), nil
}

// text reads a required line of text of at most max characters, without
// control characters.
func text(name string, s *string, max int) (string, error) {
	if s == nil || strings.TrimSpace(*s) == "" {
		return "", fmt.Errorf("%w: %s is required", ErrBadData, name)
	}
	v := strings.TrimSpace(*s)
	if utf8.RuneCountInString(v) > max {
		return "", fmt.Errorf("%w: %s is longer than %d characters", ErrBadData, name, max)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%w: %s holds control characters", ErrBadData, name)
	}
	return v, nil
}
