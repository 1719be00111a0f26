package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/redisstore"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// RedisStore keeps flows in Redis, so that several Caddy instances behind a
// load balancer serve one set of flows: a flow started on one instance can
// be finished, verified and expired on any other. It speaks to a standalone
// server, to a master watched by Sentinel, or to a Redis Cluster.
//
// Every step is one atomic script in Redis; values expire by Redis's own
// TTLs. The keys of one handler share a hash tag, so in a cluster they live
// in one slot. Instances must also share the link keys and the state_key.
//
// Caddy starts even when Redis cannot be reached: the store connects on
// first use, users are asked to try again and the bot API answers 503 until
// Redis answers, and it recovers by itself.
type RedisStore struct {
	// Addresses are host:port pairs: of the Redis server; with MasterName,
	// of the Sentinels; with Cluster, of some of the cluster's nodes.
	// Default: localhost:6379.
	Addresses []string `json:"addresses,omitempty"`

	// Username authenticates with a Redis 6 ACL user. Default: none.
	Username string `json:"username,omitempty"`
	// Password authenticates the connections; it may be {env.NAME} or
	// {file.PATH}. Default: none.
	Password string `json:"password,omitempty"`
	// DB selects a database of a standalone or Sentinel-watched server; a
	// cluster has only database 0. Default: 0.
	DB int `json:"db,omitempty"`

	// MasterName names the master the Sentinels at Addresses watch. Setting
	// it connects through Sentinel, which follows failovers. Default: none,
	// no Sentinel.
	MasterName string `json:"master_name,omitempty"`
	// SentinelUsername and SentinelPassword authenticate with the Sentinels
	// when they require it; the password may be {env.NAME} or {file.PATH}.
	// Default: none.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// Cluster connects to a Redis Cluster through the nodes at Addresses.
	// Default: off.
	Cluster bool `json:"cluster,omitempty"`

	// TLS connects with TLS 1.2 or later, checking the server's
	// certificate against the system's roots, or TLSCA. Any other tls_
	// option turns it on too. Default: off.
	TLS bool `json:"tls,omitempty"`
	// TLSServerName is the name the server's certificate must carry.
	// Default: the host of the address dialled.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// TLSCA is a PEM file of the certificates that sign the server's.
	// Default: the system's roots.
	TLSCA string `json:"tls_ca,omitempty"`
	// TLSClientCert and TLSClientKey are PEM files of the certificate and
	// private key the store presents to servers that require clients to
	// prove who they are (mutual TLS). Set both or neither. Default: none.
	TLSClientCert string `json:"tls_client_cert,omitempty"`
	TLSClientKey  string `json:"tls_client_key,omitempty"`

	// KeyPrefix starts every key, to keep the store apart from other users
	// of the same Redis. Instances that share flows must share it.
	// Default: bothandoff:
	KeyPrefix string `json:"key_prefix,omitempty"`

	// DialTimeout bounds connecting to a server. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReadTimeout bounds waiting for an answer; a user waits at most about
	// this long before being asked to try again. Default: 2s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
	// WriteTimeout bounds sending a command. Default: ReadTimeout.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PoolSize is how many connections each instance keeps per Redis node.
	// Default: 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`

	// WaitReplicas is how many replicas must acknowledge each write before
	// a step goes on. Replication is asynchronous: without waiting, a
	// failover can lose a step the old master acknowledged, such as a
	// verify that released a result, which could then be released again.
	// Waiting adds to every write the time the replicas take to
	// acknowledge it (it rides in the same round trip as the write). When
	// fewer acknowledge within WaitTimeout, the user is asked to try again
	// and the bot API answers 503, though the write stands; so with as many
	// as there are replicas, one that is down stops every step until it is
	// back. In a cluster, the replicas are those of the shard holding the
	// handler's keys. Default: 0, do not wait.
	WaitReplicas int `json:"wait_replicas,omitempty"`
	// WaitTimeout bounds how long a write waits for its replicas; it must
	// be shorter than ReadTimeout. Default: 1s.
	WaitTimeout caddy.Duration `json:"wait_timeout,omitempty"`

	client redis.UniversalClient
	logger *zap.Logger
	cancel context.CancelFunc
}

// Default timeouts of the Redis connections: short, so that a user is
// asked to try again soon when Redis is away.
const (
	defaultRedisDialTimeout = 2 * time.Second
	defaultRedisReadTimeout = 2 * time.Second
)

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision resolves the secrets and makes the client, without connecting:
// Redis may come up after Caddy.
func (s *RedisStore) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	routeRedisLogs()

	opts, err := s.options()
	if err != nil {
		return err
	}
	s.client = redis.NewUniversalClient(opts)

	probe, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.probe(probe)
	return nil
}

// options turns the configuration into go-redis options.
func (s *RedisStore) options() (*redis.UniversalOptions, error) {
	opts := &redis.UniversalOptions{
		Addrs:            s.Addresses,
		Username:         s.Username,
		DB:               s.DB,
		MasterName:       s.MasterName,
		SentinelUsername: s.SentinelUsername,
		IsClusterMode:    s.Cluster,
		DialTimeout:      durationOr(s.DialTimeout, defaultRedisDialTimeout),
		ReadTimeout:      durationOr(s.ReadTimeout, defaultRedisReadTimeout),
		PoolSize:         s.PoolSize,
		ClientName:       "caddy-bothandoff",
		// A command is tried at most three times, each time dialling at
		// most twice: enough to ride out a restart or a dropped connection,
		// short enough that a user is soon asked to try again when Redis
		// is away. Requests end when their users leave, and so do their
		// commands.
		MaxRetries:            2,
		DialerRetries:         2,
		ContextTimeoutEnabled: true,
	}
	opts.WriteTimeout = durationOr(s.WriteTimeout, opts.ReadTimeout)
	if len(opts.Addrs) == 0 {
		opts.Addrs = []string{"localhost:6379"}
	}

	var err error
	if opts.Password, err = optionalSecret(s.Password); err != nil {
		return nil, fmt.Errorf("redis password: %w", err)
	}
	if opts.SentinelPassword, err = optionalSecret(s.SentinelPassword); err != nil {
		return nil, fmt.Errorf("redis sentinel_password: %w", err)
	}
	if opts.TLSConfig, err = s.tlsConfig(); err != nil {
		return nil, err
	}
	return opts, nil
}

// optionalSecret resolves a secret that may be left out.
func optionalSecret(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := resolveSecret(s)
	return string(b), err
}

// tlsConfig returns the TLS configuration, or nil when TLS is off.
func (s *RedisStore) tlsConfig() (*tls.Config, error) {
	if !s.TLS && s.TLSServerName == "" && s.TLSCA == "" &&
		s.TLSClientCert == "" && s.TLSClientKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}

	var err error
	if cfg.RootCAs, err = s.rootCAs(); err != nil {
		return nil, err
	}
	if cfg.Certificates, err = s.clientCertificate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// rootCAs reads TLSCA, or returns nil for the system's roots.
func (s *RedisStore) rootCAs() (*x509.CertPool, error) {
	if s.TLSCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(s.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("reading redis tls_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redis tls_ca %s holds no PEM certificate", s.TLSCA)
	}
	return pool, nil
}

// clientCertificate loads the certificate the store presents to servers
// that require one, or returns none.
func (s *RedisStore) clientCertificate() ([]tls.Certificate, error) {
	switch {
	case s.TLSClientCert == "" && s.TLSClientKey == "":
		return nil, nil
	case s.TLSClientCert == "" || s.TLSClientKey == "":
		return nil, errors.New("redis: tls_client_cert and tls_client_key go together: " +
			"set both or neither")
	}
	pair, err := tls.LoadX509KeyPair(s.TLSClientCert, s.TLSClientKey)
	if err != nil {
		return nil, fmt.Errorf("loading redis tls_client_cert and tls_client_key: %w", err)
	}
	return []tls.Certificate{pair}, nil
}

// probe tells the operator at start whether Redis answers; the store does
// not need it, and keeps trying on every use.
func (s *RedisStore) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*durationOr(s.DialTimeout, defaultRedisDialTimeout))
	defer cancel()
	err := s.client.Ping(ctx).Err()
	switch {
	case errors.Is(err, context.Canceled):
	case err != nil:
		s.logger.Warn("redis not reachable yet; users are asked to try again and the bot API "+
			"answers 503 until it is", zap.Strings("addresses", s.Addresses), zap.Error(err))
	default:
		s.logger.Info("redis store connected", zap.Strings("addresses", s.Addresses),
			zap.String("mode", s.mode()))
	}
}

// mode names how the store connects, for the logs.
func (s *RedisStore) mode() string {
	switch {
	case s.MasterName != "":
		return "sentinel"
	case s.Cluster:
		return "cluster"
	}
	return "standalone"
}

// Validate checks the options that go-redis would otherwise read in a way
// the operator may not expect.
func (s *RedisStore) Validate() error {
	switch {
	case s.MasterName != "" && s.Cluster:
		return errors.New("redis: master (Sentinel) and cluster exclude each other")
	case s.Cluster && s.DB != 0:
		return errors.New("redis: a cluster has only database 0")
	case s.DB < 0:
		return errors.New("redis: db must not be negative")
	case len(s.Addresses) > 1 && s.MasterName == "" && !s.Cluster:
		return errors.New("redis: several addresses need cluster, or master NAME for Sentinel")
	case strings.ContainsAny(s.KeyPrefix, "{}"):
		return errors.New("redis: key_prefix must not contain { or }: the store adds a hash tag")
	case s.PoolSize < 0 || s.DialTimeout < 0 || s.ReadTimeout < 0 || s.WriteTimeout < 0 ||
		s.WaitReplicas < 0 || s.WaitTimeout < 0:
		return errors.New("redis: pool_size, wait_replicas and timeouts must not be negative")
	}
	return s.validateWait()
}

// validateWait checks that a write can wait for its replicas without its
// connection giving up first.
func (s *RedisStore) validateWait() error {
	if s.WaitReplicas == 0 {
		return nil
	}
	wait := durationOr(s.WaitTimeout, redisstore.DefaultWaitTimeout)
	read := durationOr(s.ReadTimeout, defaultRedisReadTimeout)
	if wait >= read {
		return fmt.Errorf("redis: wait_timeout (%v) must be shorter than read_timeout (%v)",
			wait, read)
	}
	return nil
}

// Store implements StoreModule.
func (s *RedisStore) Store(namespace string) (flow.Store, error) {
	return redisstore.New(s.client, redisstore.Config{
		Prefix: s.KeyPrefix, Namespace: namespace,
		WaitReplicas: s.WaitReplicas, WaitTimeout: time.Duration(s.WaitTimeout),
	})
}

// Cleanup closes the connections.
func (s *RedisStore) Cleanup() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.client != nil {
		return s.client.Close()
	}
	return nil
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	store redis [ADDRESS...] {
//		username NAME
//		password SECRET
//		db N
//		master NAME
//		sentinel_username NAME
//		sentinel_password SECRET
//		cluster
//		tls
//		tls_server_name NAME
//		tls_ca PEM_FILE
//		tls_client_cert PEM_FILE
//		tls_client_key PEM_FILE
//		key_prefix PREFIX
//		dial_timeout DURATION
//		read_timeout DURATION
//		write_timeout DURATION
//		pool_size N
//		wait_replicas N
//		wait_timeout DURATION
//	}
func (s *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // redis
	s.Addresses = d.RemainingArgs()

	str := func(dst *string) func(*caddyfile.Dispenser) error {
		return func(d *caddyfile.Dispenser) error { return oneArg(d, dst) }
	}
	dur := func(dst *caddy.Duration) func(*caddyfile.Dispenser) error {
		return func(d *caddyfile.Dispenser) error { return durationArg(d, dst) }
	}
	num := func(dst *int) func(*caddyfile.Dispenser) error {
		return func(d *caddyfile.Dispenser) error { return intArg(d, dst) }
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"username":          str(&s.Username),
		"password":          str(&s.Password),
		"db":                num(&s.DB),
		"master":            str(&s.MasterName),
		"sentinel_username": str(&s.SentinelUsername),
		"sentinel_password": str(&s.SentinelPassword),
		"cluster":           boolFlag(&s.Cluster),
		"tls":               boolFlag(&s.TLS),
		"tls_server_name":   str(&s.TLSServerName),
		"tls_ca":            str(&s.TLSCA),
		"tls_client_cert":   str(&s.TLSClientCert),
		"tls_client_key":    str(&s.TLSClientKey),
		"key_prefix":        str(&s.KeyPrefix),
		"dial_timeout":      dur(&s.DialTimeout),
		"read_timeout":      dur(&s.ReadTimeout),
		"write_timeout":     dur(&s.WriteTimeout),
		"pool_size":         num(&s.PoolSize),
		"wait_replicas":     num(&s.WaitReplicas),
		"wait_timeout":      dur(&s.WaitTimeout),
	})
}

// routeRedisLogs sends go-redis's own messages (failed dials, pool
// trouble) to Caddy's log at debug level, once per process: go-redis keeps
// one logger for the process. The engine logs what users run into.
var routeRedisLogs = sync.OnceFunc(func() { redis.SetLogger(redisLog{}) })

// redisLog writes go-redis's messages to Caddy's current default logger.
type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if ce := caddy.Log().Named("redis").Check(zap.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// Interface guards
var (
	_ StoreModule           = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.Validator       = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)
