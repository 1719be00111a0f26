package payment_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
	"github.com/bothandoff/caddy-bothandoff/tests/fakes/stripefake"
)

func TestReturnPaid(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.begin(f)
	s := fx.session()
	if err := fx.fake.Pay(s.ID, stripefake.Payment{Email: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}

	out, err := fx.paidReturn(f, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := result(t, out)
	want := payment.Result{
		Amount: 1999, Currency: "eur", OrderID: "o-1", SessionID: s.ID,
		PaymentIntentID: fx.session().PaymentIntent, CustomerEmail: "ann@example.com",
	}
	if got != want || want.PaymentIntentID == "" {
		t.Errorf("result = %+v; want %+v", got, want)
	}
}

func TestReturnRefusals(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.begin(f)
	mine := fx.session()

	// Another flow's session, paid, is not this flow's.
	g := fx.newFlow("flow-b")
	fx.begin(g)
	theirs := fx.session()
	if err := fx.fake.Pay(theirs.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}
	_, err := fx.paidReturn(f, theirs.ID)
	if !errors.Is(err, flow.ErrBadRequest) || !errors.Is(err, payment.ErrOtherSession) {
		t.Errorf("return with another flow's session: %v; want ErrOtherSession", err)
	}
	if _, err := fx.paidReturn(f, ""); !errors.Is(err, payment.ErrOtherSession) {
		t.Errorf("return without a session: %v; want ErrOtherSession", err)
	}
	if _, err := fx.paidReturn(fx.newFlow("flow-c"), mine.ID); !errors.Is(err, payment.ErrOtherSession) {
		t.Errorf("return to a flow without a session: %v; want ErrOtherSession", err)
	}

	// Coming back to the success URL without paying completes nothing.
	if _, err := fx.paidReturn(f, mine.ID); !errors.Is(err, flow.ErrNotCompleted) {
		t.Errorf("return from an open session: %v; want ErrNotCompleted", err)
	}
}

func TestReturnAmountMismatch(t *testing.T) {
	for _, c := range []struct {
		name   string
		amount int64
		data   string
	}{
		{"amount changed at Stripe", 1, ""},
		{"currency of the link differs", 1999,
			`{"amount":1999,"currency":"usd","description":"Tea","orderId":"o-1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, testKey)
			f := fx.newFlow("flow-a")
			fx.begin(f)
			s := fx.session()
			if err := fx.fake.Pay(s.ID, stripefake.Payment{}); err != nil {
				t.Fatal(err)
			}
			fx.fake.SetAmount(s.ID, c.amount)
			if c.data != "" {
				f.Data = []byte(c.data)
			}
			out, err := fx.paidReturn(f, s.ID)
			if err != nil || out.Failure != payment.FailAmount {
				t.Errorf("outcome = %+v, %v; want failure %s", out, err, payment.FailAmount)
			}
		})
	}
}

func TestReturnAsync(t *testing.T) {
	for _, ok := range []bool{true, false} {
		fx := newFixture(t, testKey)
		f := fx.newFlow("flow-a")
		fx.begin(f)
		s := fx.session()
		if err := fx.fake.Pay(s.ID, stripefake.Payment{Async: true}); err != nil {
			t.Fatal(err)
		}
		out, err := fx.paidReturn(f, s.ID)
		if err != nil || !out.Waiting {
			t.Fatalf("return while the payment processes: %+v, %v; want waiting", out, err)
		}

		if err := fx.fake.SettleAsync(s.ID, ok); err != nil {
			t.Fatal(err)
		}
		out, err = fx.paidReturn(f, s.ID)
		switch {
		case err != nil:
			t.Fatal(err)
		case ok:
			result(t, out)
		case out.Failure != payment.FailPayment:
			t.Errorf("failed async payment: %+v; want failure %s", out, payment.FailPayment)
		}
	}
}

func TestReturnCancel(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.begin(f)
	s := fx.session()

	cancel := url.Values{"flow": {f.Handle}, "cancel": {"1"}}
	out, err := fx.returnTo(f, cancel)
	if err != nil || out.Failure != payment.FailCancelled {
		t.Fatalf("cancel: %+v, %v; want failure cancelled", out, err)
	}
	// The session is expired, so that it cannot be paid afterwards.
	if got := fx.session(); got.Status != "expired" {
		t.Errorf("session after cancel is %s; want expired", got.Status)
	}
	if err := fx.fake.Pay(s.ID, stripefake.Payment{}); err == nil {
		t.Error("a cancelled session could still be paid")
	}
}

func TestCancelAfterPaying(t *testing.T) {
	fx := newFixture(t, testKey)
	f := fx.newFlow("flow-a")
	fx.begin(f)
	s := fx.session()
	if err := fx.fake.Pay(s.ID, stripefake.Payment{}); err != nil {
		t.Fatal(err)
	}

	// Paid in one tab, cancelled in another: the payment stands.
	out, err := fx.returnTo(f, url.Values{"flow": {f.Handle}, "cancel": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res := result(t, out); res.SessionID != s.ID {
		t.Errorf("result names %s; want %s", res.SessionID, s.ID)
	}
}
