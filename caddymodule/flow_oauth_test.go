package caddymodule

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestOAuthFlowCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oauth entra {
		preset entra {env.TENANT}
		client_id {env.CLIENT_ID}
		client_secret {file./run/secrets/entra}
		scopes openid profile offline_access Calendars.ReadWrite
		auth_params {
			prompt select_account
			domain_hint contoso.com
		}
		authority https://login.microsoftonline.us
		timeout 5s
		ttl 20m
	}`)
	var o OAuthFlow
	if err := o.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(o)
	want := `{"name":"entra","ttl":1200000000000,"preset":"entra","tenant":"{env.TENANT}",` +
		`"authority":"https://login.microsoftonline.us","client_id":"{env.CLIENT_ID}",` +
		`"client_secret":"{file./run/secrets/entra}",` +
		`"scopes":["openid","profile","offline_access","Calendars.ReadWrite"],` +
		`"auth_params":{"domain_hint":"contoso.com","prompt":"select_account"},"timeout":5000000000}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestOAuthFlowCaddyfileClientKey(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oauth work {
		preset entra {env.TENANT}
		client_id {env.CLIENT_ID}
		client_key /etc/handoff/entra.key alg PS256 id key-2030
		client_certificate /etc/handoff/entra.crt
	}`)
	var o OAuthFlow
	if err := o.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(o)
	want := `{"name":"work","preset":"entra","tenant":"{env.TENANT}","client_id":"{env.CLIENT_ID}",` +
		`"client_key":"/etc/handoff/entra.key","client_key_alg":"PS256","client_key_id":"key-2030",` +
		`"client_certificate":"/etc/handoff/entra.crt"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// The key alone, as for a provider that needs no certificate.
	o = OAuthFlow{}
	d = caddyfile.NewTestDispenser("oauth staff {\n issuer https://sso.example.com\n client_id c\n" +
		" client_key /etc/handoff/sso.key\n}")
	if err := o.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(o)
	want = `{"name":"staff","issuer":"https://sso.example.com","client_id":"c",` +
		`"client_key":"/etc/handoff/sso.key"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestOAuthFlowCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"no name":           `oauth { preset google }`,
		"unknown":           "oauth x {\n preset google\n colour blue\n}",
		"repeated":          "oauth x {\n client_id a\n client_id b\n}",
		"entra no tenant":   "oauth x {\n preset entra\n}",
		"unknown preset":    "oauth x {\n preset okta\n}",
		"google with arg":   "oauth x {\n preset google extra\n}",
		"no scopes":         "oauth x {\n scopes\n}",
		"params twice":      "oauth x {\n auth_params {\n prompt a\n prompt b\n }\n}",
		"params no value":   "oauth x {\n auth_params {\n prompt\n }\n}",
		"params empty":      "oauth x {\n auth_params {\n }\n}",
		"bad timeout":       "oauth x {\n timeout soon\n}",
		"two client ids":    "oauth x {\n client_id a b\n}",
		"params inline arg": "oauth x {\n auth_params prompt\n}",
		"key no file":       "oauth x {\n client_key\n}",
		"key odd args":      "oauth x {\n client_key k.pem alg\n}",
		"key unknown arg":   "oauth x {\n client_key k.pem kid 1\n}",
		"key alg twice":     "oauth x {\n client_key k.pem alg RS256 alg PS256\n}",
		"key twice":         "oauth x {\n client_key a.pem\n client_key b.pem\n}",
		"cert no file":      "oauth x {\n client_certificate\n}",
		"cert two files":    "oauth x {\n client_certificate a.pem b.pem\n}",
	}
	for name, input := range cases {
		var o OAuthFlow
		if err := o.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
			t.Errorf("%s: no error for %q", name, input)
		}
	}

	// Errors name the line they are on.
	var o OAuthFlow
	err := o.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth x {\n preset google\n colour blue\n}"))
	if err == nil || !strings.Contains(err.Error(), ":3") {
		t.Errorf("error without its line: %v", err)
	}
}

func TestOAuthFlowsInHandlerCaddyfile(t *testing.T) {
	input := `example.com {
	bot_handoff {
		link_key secret {env.LINK}
		oauth work {
			preset entra organizations
			client_id id1
			client_secret {env.S1}
		}
		oauth code {
			preset github
			client_id id2
			client_secret {env.S2}
		}
		oauth later {
			preset google
			client_id id3
			client_secret {env.S3}
			enabled false
		}
	}
}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`"kind":"oauth","name":"work","preset":"entra","tenant":"organizations"`,
		`"kind":"oauth","name":"code","preset":"github"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, `"later"`) {
		t.Errorf("a disabled flow was adapted: %s", s)
	}
}

func TestOAuthFlowProvision(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	t.Setenv("TEST_TENANT", "contoso.onmicrosoft.com")
	t.Setenv("TEST_OAUTH_SECRET", "s3cr3t")

	o := OAuthFlow{FlowCommon: FlowCommon{Name: "work"}, Preset: "entra", Tenant: "{env.TEST_TENANT}",
		ClientID: "id", ClientSecret: "{env.TEST_OAUTH_SECRET}"}
	if err := o.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if fc := o.FlowConfig(); fc.Provider == nil || fc.Provider.Kind() != "oauth" {
		t.Errorf("flow config = %+v", fc)
	}

	bad := []OAuthFlow{
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id",
			ClientSecret: "{env.TEST_OAUTH_UNSET}"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id"},
		{FlowCommon: FlowCommon{Name: "x"}, Issuer: "http://idp.example.com", ClientID: "id",
			ClientSecret: "s"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id", ClientSecret: "s",
			Issuer: "https://idp.example.com"},
		{FlowCommon: FlowCommon{Name: "Bad Name"}, Preset: "google", ClientID: "id", ClientSecret: "s"},
		{FlowCommon: FlowCommon{Name: "x"}, Preset: "google", ClientID: "id", ClientSecret: "s",
			Timeout: -1},
	}
	for i, o := range bad {
		if err := o.Provision(ctx); err == nil {
			t.Errorf("config %d provisioned: %+v", i, o)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

// writeOAuthPEM writes PEM blocks to a file in dir and returns its path.
func writeOAuthPEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, block := range blocks {
		b = append(b, pem.EncodeToMemory(block)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// certificateBlock returns a self-signed certificate of key, in PEM.
func certificateBlock(t *testing.T, key crypto.Signer) *pem.Block {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bot-handoff client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "CERTIFICATE", Bytes: der}
}

func pkcs8Block(t *testing.T, key crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func TestOAuthFlowProvisionClientKey(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)

	rsaPKCS1 := writeOAuthPEM(t, dir, "rsa1.key",
		&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	rsaPKCS8 := writeOAuthPEM(t, dir, "rsa8.key", pkcs8Block(t, rsaKey))
	rsaCert := writeOAuthPEM(t, dir, "rsa.crt", certificateBlock(t, rsaKey))
	ecSEC1 := writeOAuthPEM(t, dir, "ec.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	ecBoth := writeOAuthPEM(t, dir, "ec.pem", certificateBlock(t, ecKey),
		&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	p384Key := writeOAuthPEM(t, dir, "p384.key", pkcs8Block(t, p384))
	edFile := writeOAuthPEM(t, dir, "ed.key", pkcs8Block(t, edKey))
	notAKey := writeOAuthPEM(t, dir, "junk.key", &pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})

	entra := func(key, cert string) OAuthFlow {
		return OAuthFlow{FlowCommon: FlowCommon{Name: "work"}, Preset: "entra",
			Tenant: "contoso.onmicrosoft.com", ClientID: "id", ClientKey: key, ClientCertificate: cert}
	}
	staff := func(key string) OAuthFlow {
		return OAuthFlow{FlowCommon: FlowCommon{Name: "staff"}, Issuer: "https://sso.example.com",
			ClientID: "id", ClientKey: key}
	}
	good := map[string]OAuthFlow{
		"RSA PKCS #1 with certificate": entra(rsaPKCS1, rsaCert),
		"ECDSA SEC 1, one file":        entra(ecBoth, ecBoth),
		"RSA PKCS #8 alone":            staff(rsaPKCS8),
		"ECDSA SEC 1 alone":            staff(ecSEC1),
	}
	ps256 := entra(rsaPKCS8, rsaCert)
	ps256.ClientKeyAlg, ps256.ClientKeyID = "PS256", "k1"
	good["RSA PS256 with kid"] = ps256
	for name, o := range good {
		if err := o.Provision(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	withSecret := entra(rsaPKCS1, rsaCert)
	withSecret.ClientSecret = "s3cr3t"
	certOnly := entra("", rsaCert)
	certOnly.ClientSecret = "s3cr3t"
	es256RSA := staff(rsaPKCS1)
	es256RSA.ClientKeyAlg = "ES256"
	github := staff(ecSEC1)
	github.Preset, github.Issuer = "github", ""
	bad := map[string]struct {
		o    OAuthFlow
		want string
	}{
		"secret and key":      {withSecret, "client_secret or client_key, not both"},
		"neither":             {entra("", ""), "client_secret or client_key is required"},
		"mismatched cert":     {entra(rsaPKCS1, ecBoth), "not that of the client key"},
		"Entra without cert":  {entra(rsaPKCS8, ""), "give the certificate too"},
		"P-384 key":           {staff(p384Key), "P-256"},
		"Ed25519 key":         {staff(edFile), "not supported"},
		"not a key":           {staff(notAKey), "parsing PRIVATE KEY"},
		"missing key file":    {staff(filepath.Join(dir, "none.key")), "reading client_key"},
		"key file as cert":    {entra(rsaPKCS1, rsaPKCS1), "no PEM certificate"},
		"certificate, no key": {certOnly, "need a client key"},
		"ES256 with RSA key":  {es256RSA, "RS256 or PS256"},
		"GitHub with a key":   {github, "GitHub takes a client secret"},
	}
	for name, c := range bad {
		err := c.o.Provision(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want %q", name, err, c.want)
		} else if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "-----") {
			t.Errorf("%s: error shows a credential: %v", name, err)
		}
	}
}
