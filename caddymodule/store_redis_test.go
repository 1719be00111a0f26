package caddymodule

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/internal/redistest"
)

func TestRedisCaddyfile(t *testing.T) {
	input := `redis 10.0.0.1:26379 10.0.0.2:26379 {
		username handoff
		password {env.REDIS_PASSWORD}
		db 2
		master mymaster
		sentinel_username watcher
		sentinel_password {file./run/secrets/sentinel}
		tls_server_name redis.internal
		tls_ca /etc/redis/ca.pem
		tls_client_cert /etc/redis/client.pem
		tls_client_key /etc/redis/client-key.pem
		key_prefix shop:
		dial_timeout 1s
		read_timeout 500ms
		write_timeout 1s
		pool_size 20
		wait_replicas 1
		wait_timeout 250ms
	}`
	var got RedisStore
	if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := RedisStore{
		Addresses: []string{"10.0.0.1:26379", "10.0.0.2:26379"},
		Username:  "handoff", Password: "{env.REDIS_PASSWORD}", DB: 2,
		MasterName: "mymaster", SentinelUsername: "watcher",
		SentinelPassword: "{file./run/secrets/sentinel}",
		TLSServerName:    "redis.internal", TLSCA: "/etc/redis/ca.pem", KeyPrefix: "shop:",
		DialTimeout: caddy.Duration(time.Second), ReadTimeout: caddy.Duration(500 * time.Millisecond),
		WriteTimeout: caddy.Duration(time.Second), PoolSize: 20,
		TLSClientCert: "/etc/redis/client.pem", TLSClientKey: "/etc/redis/client-key.pem",
		WaitReplicas: 1, WaitTimeout: caddy.Duration(250 * time.Millisecond),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, want)
	}

	var flags RedisStore
	d := caddyfile.NewTestDispenser("redis a:1 b:2 c:3 {\n cluster\n tls\n }")
	err := flags.UnmarshalCaddyfile(d)
	if err != nil || !flags.Cluster || !flags.TLS || len(flags.Addresses) != 3 {
		t.Errorf("cluster and tls flags: %+v, %v", flags, err)
	}
}

func TestRedisCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"redis {\n\tpasword x\n}":                `unrecognized subdirective "pasword"`,
		"redis {\n\tdb 1\n\tdb 2\n}":             `subdirective "db" given twice`,
		"redis {\n\tread_timeout soon\n}":        `bad duration "soon"`,
		"redis {\n\tcluster yes\n}":              "wrong argument count",
		"redis {\n\tpool_size many\n}":           `bad number "many"`,
		"redis {\n\tpassword a b\n}":             "wrong argument count",
		"redis {\n\ttls_ca\n}":                   "wrong argument count",
		"redis {\n\tkey_prefix\n}":               "wrong argument count",
		"redis {\n\tmaster\n}":                   "wrong argument count",
		"redis {\n\tsentinel_password\n}":        "wrong argument count",
		"redis {\n\tdial_timeout 1s 2s\n}":       "wrong argument count",
		"redis {\n\tusername a\n\tusername b\n}": `subdirective "username" given twice`,
		"redis {\n\ttls_client_cert\n}":          "wrong argument count",
		"redis {\n\ttls_client_key a b\n}":       "wrong argument count",
		"redis {\n\twait_replicas all\n}":        `bad number "all"`,
		"redis {\n\twait_timeout soon\n}":        `bad duration "soon"`,
		"redis {\n\twait_replicas 1 2\n}":        "wrong argument count",
	}
	for input, want := range cases {
		var s RedisStore
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v; want an error with %q", input, err, want)
		}
	}
}

// The handler's store directive hands the tokens to the module and keeps
// its JSON under the backend key.
func TestRedisInHandlerCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`bot_handoff {
		store redis 127.0.0.1:6380 {
			key_prefix app:
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(h.StoreRaw, &got)
	if got["backend"] != "redis" || got["key_prefix"] != "app:" {
		t.Errorf("store JSON = %s", h.StoreRaw)
	}
}

func TestRedisValidate(t *testing.T) {
	cases := map[string]RedisStore{
		"master and cluster":     {MasterName: "m", Cluster: true},
		"cluster db":             {Cluster: true, DB: 1},
		"negative db":            {DB: -1},
		"several addresses":      {Addresses: []string{"a:1", "b:2"}},
		"prefix with a brace":    {KeyPrefix: "app{x}:"},
		"negative pool":          {PoolSize: -1},
		"negative timeout":       {ReadTimeout: -1},
		"negative replicas":      {WaitReplicas: -1},
		"negative wait":          {WaitTimeout: -1},
		"wait as long as a read": {WaitReplicas: 1, WaitTimeout: caddy.Duration(2 * time.Second)},
		"wait past a short read": {WaitReplicas: 1, ReadTimeout: caddy.Duration(time.Second)},
	}
	for name, s := range cases {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: valid; want an error", name)
		}
	}
	ok := []RedisStore{
		{},
		{Addresses: []string{"a:1", "b:2"}, Cluster: true},
		{Addresses: []string{"a:1", "b:2"}, MasterName: "m", DB: 3},
		{WaitReplicas: 1},
		{WaitReplicas: 2, WaitTimeout: caddy.Duration(time.Second),
			ReadTimeout: caddy.Duration(3 * time.Second)},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// loadRedis provisions the module from JSON, as Caddy does; the module is
// cleaned up when the test ends.
func loadRedis(t *testing.T, raw string) (*RedisStore, error) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("http.handlers.bot_handoff.stores.redis", json.RawMessage(raw))
	if err != nil {
		return nil, err
	}
	return mod.(*RedisStore), nil
}

func mustStore(t *testing.T, m *RedisStore) flow.Store {
	t.Helper()
	st, err := m.Store("ns")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Redis that is not there yet does not stop provisioning: the store
// answers ErrStoreUnavailable, and works once Redis is up.
func TestRedisLazyConnect(t *testing.T) {
	port := redistest.FreePort(t)
	m, err := loadRedis(t, `{"addresses":["127.0.0.1:`+strconv.Itoa(port)+`"],"dial_timeout":"200ms"}`)
	if err != nil {
		t.Fatalf("provisioning with Redis down: %v", err)
	}
	st := mustStore(t, m)
	ctx := context.Background()
	if _, err := st.Get(ctx, "f/a"); !errors.Is(err, flow.ErrStoreUnavailable) {
		t.Fatalf("Get with Redis down: %v; want ErrStoreUnavailable", err)
	}

	srv := redistest.Start(t)
	m2, err := loadRedis(t, `{"addresses":["`+srv.Addr+`"],"key_prefix":"app:"}`)
	if err != nil {
		t.Fatal(err)
	}
	st = mustStore(t, m2)
	if err := st.Apply(ctx, flow.Create("f/a", []byte("a"), 0)); err != nil {
		t.Fatal(err)
	}
	if n := srv.Client().Exists(ctx, "app:{ns}:v:f/a").Val(); n != 1 {
		t.Errorf("the value is not under the key prefix and namespace")
	}
}

// The password comes from the environment at provision, and without it
// Redis refuses the store.
func TestRedisPassword(t *testing.T) {
	srv := redistest.StartWithPassword(t, "s3cret-redis-password")
	t.Setenv("TEST_REDIS_PASSWORD", "s3cret-redis-password")
	ctx := context.Background()

	m, err := loadRedis(t, `{"addresses":["`+srv.Addr+`"],"password":"{env.TEST_REDIS_PASSWORD}"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := mustStore(t, m).Apply(ctx, flow.Create("f/a", nil, 0)); err != nil {
		t.Fatalf("with the password: %v", err)
	}

	m, err = loadRedis(t, `{"addresses":["`+srv.Addr+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustStore(t, m).Get(ctx, "f/a"); !errors.Is(err, flow.ErrStoreUnavailable) {
		t.Errorf("without the password: %v; want ErrStoreUnavailable", err)
	}
	if _, err := loadRedis(t, `{"password":"{env.TEST_REDIS_UNSET}"}`); err == nil {
		t.Error("a password from an unset variable was accepted")
	}
}

// TLS with the operator's CA works; the system's roots, or another server
// name, are refused.
func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir, "redis.test")
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	roots.AppendCertsFromPEM(caPEM)
	client := &tls.Config{RootCAs: roots, ServerName: "redis.test"}
	srv := redistest.StartTLS(t, certFile, keyFile, client)
	ctx := context.Background()

	addr := `"addresses":["` + srv.Addr + `"]`
	m, err := loadRedis(t, `{`+addr+`,"tls_ca":"`+caFile+`","tls_server_name":"redis.test"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := mustStore(t, m).Apply(ctx, flow.Create("f/a", nil, 0)); err != nil {
		t.Fatalf("with the CA: %v", err)
	}

	refused := []string{
		`{"addresses":["` + srv.Addr + `"],"tls":true,"tls_server_name":"redis.test"}`,
		`{"addresses":["` + srv.Addr + `"],"tls_ca":"` + caFile + `","tls_server_name":"other.test"}`,
		`{"addresses":["` + srv.Addr + `"]}`,
	}
	for _, raw := range refused {
		m, err := loadRedis(t, raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mustStore(t, m).Get(ctx, "f/a"); !errors.Is(err, flow.ErrStoreUnavailable) {
			t.Errorf("%s: %v; want ErrStoreUnavailable", raw, err)
		}
	}

	if _, err := loadRedis(t, `{"tls_ca":"`+filepath.Join(dir, "missing.pem")+`"}`); err == nil {
		t.Error("a missing tls_ca file was accepted")
	}
	if _, err := loadRedis(t, `{"tls_ca":"`+keyFile+`"}`); err == nil {
		t.Error("a tls_ca file without certificates was accepted")
	}
}

// A server that requires client certificates refuses the store without
// one, and serves it with one its CA signed.
func TestRedisMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, "server", "redis.test", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "client", "handoff", x509.ExtKeyUsageClientAuth)
	srv := redistest.StartMutualTLS(t, certFile, keyFile, ca.file,
		mustClientTLS(t, ca.file, clientCert, clientKey))
	ctx := context.Background()

	base := `"addresses":["` + srv.Addr + `"],"tls_ca":"` + ca.file +
		`","tls_server_name":"redis.test"`
	m, err := loadRedis(t, `{`+base+`}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustStore(t, m).Get(ctx, "f/a"); !errors.Is(err, flow.ErrStoreUnavailable) {
		t.Errorf("without a client certificate: %v; want ErrStoreUnavailable", err)
	}

	m, err = loadRedis(t, `{`+base+`,"tls_client_cert":"`+clientCert+
		`","tls_client_key":"`+clientKey+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	st := mustStore(t, m)
	if err := st.Apply(ctx, flow.Create("f/a", []byte("a"), 0)); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if ent, err := st.Get(ctx, "f/a"); err != nil || string(ent.Value) != "a" {
		t.Errorf("reading back with a client certificate: %q, %v", ent.Value, err)
	}
}

// mustClientTLS returns the TLS configuration of a client that trusts the
// CA and presents the certificate.
func mustClientTLS(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, ServerName: "redis.test",
		Certificates: []tls.Certificate{pair}}
}

// A client certificate needs its key and the other way round, and files
// that hold a matching pair.
func TestRedisClientCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	cert, key := ca.issue(t, "client", "handoff", x509.ExtKeyUsageClientAuth)
	_, otherKey := ca.issue(t, "other", "other", x509.ExtKeyUsageClientAuth)
	missing := filepath.Join(dir, "missing.pem")

	cases := map[string]struct{ cert, key, want string }{
		"a certificate alone":  {cert, "", "set both or neither"},
		"a key alone":          {"", key, "set both or neither"},
		"a missing file":       {missing, key, "missing.pem"},
		"a key not the cert's": {cert, otherKey, "loading redis tls_client_cert"},
		"a key as certificate": {key, key, "loading redis tls_client_cert"},
	}
	for name, c := range cases {
		raw, _ := json.Marshal(map[string]string{
			"tls_client_cert": c.cert, "tls_client_key": c.key,
		})
		_, err := loadRedis(t, string(raw))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", name, err, c.want)
		}
	}

	m, err := loadRedis(t, `{"tls_client_cert":"`+cert+`","tls_client_key":"`+key+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.tlsConfig()
	if cfg == nil || len(cfg.Certificates) != 1 || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("a client certificate alone: TLS config %+v; want TLS on, with it", cfg)
	}
}

// wait_replicas reaches the store: a write waits for the replica, and
// fails when more are wanted than there are.
func TestRedisWaitReplicas(t *testing.T) {
	master := redistest.Start(t)
	redistest.StartReplica(t, master)
	ctx := context.Background()

	addr := `"addresses":["` + master.Addr + `"]`
	m, err := loadRedis(t, `{`+addr+`,"wait_replicas":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := mustStore(t, m).Apply(ctx, flow.Create("f/a", nil, 0)); err != nil {
		t.Fatalf("waiting for the one replica: %v", err)
	}

	m, err = loadRedis(t, `{`+addr+`,"wait_replicas":2,"wait_timeout":"200ms"}`)
	if err != nil {
		t.Fatal(err)
	}
	err = mustStore(t, m).Apply(ctx, flow.Create("f/b", nil, 0))
	if !errors.Is(err, flow.ErrStoreUnavailable) || !strings.Contains(err.Error(), "1 of 2") {
		t.Errorf("waiting for 2 replicas of 1: %v; want ErrStoreUnavailable", err)
	}
}

// writeTestPKI writes a CA and a server certificate for name and 127.0.0.1,
// and returns the CA, certificate and key files.
func writeTestPKI(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	c := newTestCA(t, dir)
	cert, key = c.issue(t, "server", name, x509.ExtKeyUsageServerAuth)
	return c.file, cert, key
}

// testCA issues certificates for tests; file holds its own, in PEM.
type testCA struct {
	dir  string
	file string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
	return &testCA{dir: dir, file: file, cert: cert, key: key}
}

// issue writes a certificate for name and 127.0.0.1, for usage, and its
// key, as PREFIX.pem and PREFIX-key.pem, and returns the two files.
func (ca *testCA) issue(t *testing.T, prefix, name string,
	usage x509.ExtKeyUsage) (cert, key string) {
	t.Helper()
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &leafKey.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	return writePEM(t, filepath.Join(ca.dir, prefix+".pem"), "CERTIFICATE", der),
		writePEM(t, filepath.Join(ca.dir, prefix+"-key.pem"), "EC PRIVATE KEY", keyDER)
}

// writePEM writes der as one PEM block of kind to file, and returns file.
func writePEM(t *testing.T, file, kind string, der []byte) string {
	t.Helper()
	block := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(file, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
