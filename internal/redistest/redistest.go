// Package redistest runs real redis-server processes for tests: one per
// call, on a free loopback port, with its data in a temporary directory and
// the append-only file on, so that a restart keeps what was written (Stop
// shuts down cleanly, which syncs the file).
//
// Tests that need Redis fail, not skip, when redis-server is missing:
// scripts/setup.sh installs it.
package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 20 * time.Second

// A Server is a redis-server process. Stop and Start keep its port and its
// data directory, so a client configured with Addr finds it again.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// Dir holds the server's data and log.
	Dir string

	tb       testing.TB
	args     []string
	tls      *tls.Config // how clients reach a TLS-only server
	password string
	mu       sync.Mutex
	cmd      *exec.Cmd
	after    func(*Server) // runs after each start, like setting up a cluster
}

// Start runs a standalone server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := New(tb)
	s.Start()
	return s
}

// New returns a standalone server not started yet, with its address
// chosen, for tests of what happens before Redis is up.
func New(tb testing.TB) *Server {
	tb.Helper()
	return newServer(tb)
}

// StartCluster runs a server in cluster mode that serves every slot alone:
// a one-node cluster, which checks, like a real one, that the keys of one
// command hash to one slot.
func StartCluster(tb testing.TB) *Server {
	tb.Helper()
	s := newServer(tb, "--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	s.after = (*Server).ownAllSlots
	s.Start()
	return s
}

// StartTLS runs a server that speaks only TLS, with the certificate and key
// in the PEM files given; clients reach it with client.
func StartTLS(tb testing.TB, certFile, keyFile string, client *tls.Config) *Server {
	tb.Helper()
	return startTLS(tb, client, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-auth-clients", "no")
}

// StartMutualTLS runs a server like StartTLS that also requires clients to
// present a certificate signed by a CA of caFile; client must carry one.
func StartMutualTLS(tb testing.TB, certFile, keyFile, caFile string,
	client *tls.Config) *Server {
	tb.Helper()
	return startTLS(tb, client, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "yes")
}

// startTLS runs a server that listens only on a TLS port, the one its
// address names.
func startTLS(tb testing.TB, client *tls.Config, args ...string) *Server {
	tb.Helper()
	s := newServer(tb, args...)
	for i, a := range s.args {
		if a == "--port" {
			s.args[i+1], s.args = "0", append(s.args, "--tls-port", portOf(s.Addr))
			break
		}
	}
	s.tls = client
	s.Start()
	return s
}

// StartWithPassword runs a server that requires password.
func StartWithPassword(tb testing.TB, password string) *Server {
	tb.Helper()
	s := newServer(tb, "--requirepass", password)
	s.password = password
	s.Start()
	return s
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func newServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is required for these tests (scripts/setup.sh installs it): %v", err)
	}
	dir := tb.TempDir()
	port := FreePort(tb)
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, tb: tb}
	s.args = append([]string{bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "no",
		"--repl-diskless-sync-delay", "0",
	}, extra...)
	tb.Cleanup(s.Stop)
	return s
}

// FreePort returns a TCP port free on loopback right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs the server and waits until it answers.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}

	cmd := exec.Command(s.args[0], s.args[1:]...)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	if err := s.waitReady(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		s.tb.Fatalf("redis-server did not start: %v\n%s", err, log)
	}
	if s.after != nil {
		s.after(s)
	}
}

// waitReady polls with PING until the server has loaded its data.
func (s *Server) waitReady() error {
	c := redis.NewClient(s.options(&redis.Options{MaxRetries: -1, DialTimeout: time.Second}))
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly, as SIGTERM does: the append-only file
// is complete, and the next Start loads it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Restart stops and starts the server on the same port and data.
func (s *Server) Restart() {
	s.Stop()
	s.Start()
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(s.options(&redis.Options{}))
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// options completes client options to reach this server.
func (s *Server) options(o *redis.Options) *redis.Options {
	o.Addr, o.TLSConfig, o.Password = s.Addr, s.tls, s.password
	return o
}

// ownAllSlots gives this node every slot, once, and waits until the
// cluster says it is ok. A restarted node keeps its slots in nodes.conf.
func (s *Server) ownAllSlots() {
	ctx := context.Background()
	c := redis.NewClient(s.options(&redis.Options{}))
	defer c.Close()

	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		s.tb.Fatalf("reading cluster info: %v", err)
	}
	if !clusterOK(info) {
		if err := c.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
			s.tb.Fatalf("adding slots: %v", err)
		}
	}
	deadline := time.Now().Add(startTimeout)
	for !clusterOK(info) {
		if time.Now().After(deadline) {
			s.tb.Fatalf("cluster not ok: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
		info, _ = c.ClusterInfo(ctx).Result()
	}
}

func clusterOK(info string) bool { return strings.Contains(info, "cluster_state:ok") }

// String describes the server for test logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server at %s", s.Addr) }

// StartReplica runs a server that replicates master, and waits until it
// is in sync.
func StartReplica(tb testing.TB, master *Server) *Server {
	tb.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	s := newServer(tb, "--replicaof", host, port)
	s.after = (*Server).waitSynced
	s.Start()
	return s
}

// waitSynced waits until this replica has loaded its master's data and
// rewritten its append-only file from it: until then it refuses to shut
// down cleanly.
func (s *Server) waitSynced() {
	ctx := context.Background()
	c := redis.NewClient(s.options(&redis.Options{}))
	defer c.Close()
	s.until("the replica is in sync", func() bool {
		info, _ := c.Info(ctx, "replication", "persistence").Result()
		return strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, "aof_rewrite_in_progress:0") &&
			strings.Contains(info, "aof_rewrite_scheduled:0")
	})
}

// StartClusterReplica runs a cluster node that joins master's cluster as
// its replica, and waits until it is in sync.
func StartClusterReplica(tb testing.TB, master *Server) *Server {
	tb.Helper()
	s := newServer(tb, "--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	s.after = func(s *Server) { s.replicateInCluster(master) }
	s.Start()
	return s
}

// replicateInCluster makes this node meet master and replicate it, and
// waits until it is in sync.
func (s *Server) replicateInCluster(master *Server) {
	ctx := context.Background()
	c := redis.NewClient(s.options(&redis.Options{}))
	defer c.Close()
	m := redis.NewClient(master.options(&redis.Options{}))
	defer m.Close()

	id, err := m.ClusterMyID(ctx).Result()
	if err != nil {
		s.tb.Fatalf("reading the master's node id: %v", err)
	}
	host, port, _ := net.SplitHostPort(master.Addr)
	if err := c.ClusterMeet(ctx, host, port).Err(); err != nil {
		s.tb.Fatalf("meeting the master: %v", err)
	}
	s.until("the node knows the master", func() bool {
		return c.ClusterReplicate(ctx, id).Err() == nil
	})
	s.waitSynced()
}

// until polls done until it holds, or fails the test after startTimeout.
func (s *Server) until(what string, done func() bool) {
	deadline := time.Now().Add(startTimeout)
	for !done() {
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s: not after %v", what, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartSentinel runs a Sentinel that watches master under name, alone
// (quorum 1), and fails over a second after the master stops answering.
func StartSentinel(tb testing.TB, master *Server, name string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is required for these tests: %v", err)
	}
	dir := tb.TempDir()
	port := FreePort(tb)
	host, mport, _ := net.SplitHostPort(master.Addr)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nprotected-mode no\n"+
		"sentinel monitor %s %s %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\n"+
		"sentinel failover-timeout %s 5000\n",
		port, dir, name, host, mport, name, name)
	file := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}

	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, tb: tb,
		args: []string{bin, file, "--sentinel", "--logfile", filepath.Join(dir, "redis.log")}}
	tb.Cleanup(s.Stop)
	s.Start()
	return s
}
