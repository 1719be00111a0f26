package payment_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow/payment"
)

func TestParseData(t *testing.T) {
	d, err := payment.ParseData(json.RawMessage(
		`{"amount":1999,"currency":"EUR","description":" Tea ","orderId":"o-1","extra":true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := payment.Data{Amount: 1999, Currency: "eur", Description: "Tea", OrderID: "o-1"}
	if *d != want {
		t.Errorf("got %+v; want %+v", *d, want)
	}
}

func TestParseDataRefusals(t *testing.T) {
	long := strings.Repeat("x", 251)
	cases := map[string]string{
		"no data":           ``,
		"null":              `null`,
		"array":             `[1]`,
		"no amount":         `{"currency":"eur","description":"Tea","orderId":"o"}`,
		"zero amount":       `{"amount":0,"currency":"eur","description":"Tea","orderId":"o"}`,
		"negative amount":   `{"amount":-5,"currency":"eur","description":"Tea","orderId":"o"}`,
		"fractional amount": `{"amount":19.99,"currency":"eur","description":"Tea","orderId":"o"}`,
		"exponent amount":   `{"amount":1e3,"currency":"eur","description":"Tea","orderId":"o"}`,
		"string amount":     `{"amount":"1999","currency":"eur","description":"Tea","orderId":"o"}`,
		"huge amount":       `{"amount":100000000,"currency":"eur","description":"Tea","orderId":"o"}`,
		"overflow amount":   `{"amount":99999999999999999999,"currency":"eur","description":"T","orderId":"o"}`,
		"no currency":       `{"amount":1999,"description":"Tea","orderId":"o"}`,
		"unknown currency":  `{"amount":1999,"currency":"abc","description":"Tea","orderId":"o"}`,
		"long currency":     `{"amount":1999,"currency":"euro","description":"Tea","orderId":"o"}`,
		"currency number":   `{"amount":1999,"currency":978,"description":"Tea","orderId":"o"}`,
		"no description":    `{"amount":1999,"currency":"eur","orderId":"o"}`,
		"blank description": `{"amount":1999,"currency":"eur","description":"  ","orderId":"o"}`,
		"long description":  `{"amount":1999,"currency":"eur","description":"` + long + `","orderId":"o"}`,
		"control character": `{"amount":1999,"currency":"eur","description":"a\u0007b","orderId":"o"}`,
		"no order":          `{"amount":1999,"currency":"eur","description":"Tea"}`,
		"empty order":       `{"amount":1999,"currency":"eur","description":"Tea","orderId":""}`,
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := payment.ParseData(json.RawMessage(raw))
			if !errors.Is(err, payment.ErrBadData) {
				t.Errorf("got %v; want ErrBadData", err)
			}
		})
	}
}

func TestValidateDataIsParseData(t *testing.T) {
	fx := newFixture(t, testKey)
	if err := fx.p.ValidateData(json.RawMessage(`{"amount":1}`)); !errors.Is(err, payment.ErrBadData) {
		t.Errorf("got %v; want ErrBadData", err)
	}
	ok := `{"amount":1,"currency":"jpy","description":"Tea","orderId":"o"}`
	if err := fx.p.ValidateData(json.RawMessage(ok)); err != nil {
		t.Errorf("got %v; want nil", err)
	}
}
