package payment_test

import (
	"encoding/json"
	"fmt"

	"github.com/bothandoff/caddy-bothandoff/flow/payment"
)

// The data a bot signs into a payment link: 19.99 EUR for order-42.
func ExampleParseData() {
	d, err := payment.ParseData(json.RawMessage(
		`{"amount":1999,"currency":"EUR","description":"Green tea","orderId":"order-42"}`))
	fmt.Println(d.Amount, d.Currency, d.Description, d.OrderID, err)
	// Output: 1999 eur Green tea order-42 <nil>
}

// A bot decodes the result the verify API releases for a paid flow.
func ExampleResult() {
	released := []byte(`{"amount":1999,"currency":"eur","orderId":"order-42",` +
		`"sessionId":"cs_test_a1","paymentIntentId":"pi_1","livemode":false}`)
	var res payment.Result
	if err := json.Unmarshal(released, &res); err != nil {
		panic(err)
	}
	fmt.Printf("order %s paid: %d %s (test payment: %v)\n",
		res.OrderID, res.Amount, res.Currency, !res.Livemode)
	// Output: order order-42 paid: 1999 eur (test payment: true)
}
