// Package tests runs caddy-bothandoff as its users do: a real Caddy process
// built from cmd/caddy, configured by a Caddyfile, in front of a test site,
// driven over HTTP (and, in the browser tests, by Chromium).
package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// caddyBin is the Caddy built for this test run.
var caddyBin string

// buildFlags are the flags xcaddy builds with, so that the builds of the
// tests, the Makefile and xcaddy share the build cache.
var buildFlags = []string{"-trimpath", "-ldflags", "-w -s", "-tags", "nobadger,nomysql,nopgx", "./cmd/caddy"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handoff-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", append([]string{"build", "-o", caddyBin}, buildFlags...)...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopChromium()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Caddy is a running Caddy process with its own data directory, which
// survives Restart.
type Caddy struct {
	t       *testing.T
	Dir     string
	Port    int
	Admin   int
	URL     string
	env     []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	logs    *syncBuffer
	allLogs *syncBuffer
	// raw means the config is a whole Caddyfile, written as given.
	raw bool
}

// freePort returns a TCP port free on loopback right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCaddy writes the Caddyfile that site returns for the process's ports
// and runs Caddy on it. The Caddyfile gets a global block with the admin
// port and the data directory; site should contain only site blocks.
func startCaddy(t *testing.T, site func(port int) string, env ...string) *Caddy {
	t.Helper()
	c := &Caddy{t: t, Dir: t.TempDir(), Port: freePort(t), Admin: freePort(t), env: env,
		allLogs: &syncBuffer{}}
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", c.Port)
	c.WriteConfig(site(c.Port))
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// startCaddyRaw runs Caddy on a whole Caddyfile, which config returns for the
// process's ports and data directory.
func startCaddyRaw(t *testing.T, config func(c *Caddy) string, env ...string) *Caddy {
	t.Helper()
	c := &Caddy{t: t, Dir: t.TempDir(), Port: freePort(t), Admin: freePort(t), env: env,
		allLogs: &syncBuffer{}, raw: true}
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", c.Port)
	c.WriteConfig(config(c))
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// WriteConfig writes the Caddyfile, for a start or a reload.
func (c *Caddy) WriteConfig(site string) {
	if c.raw {
		if err := os.WriteFile(filepath.Join(c.Dir, "Caddyfile"), []byte(site), 0o600); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	global := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tstorage file_system %s\n\tauto_https off\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n\n",
		c.Admin, filepath.Join(c.Dir, "data"))
	if err := os.WriteFile(filepath.Join(c.Dir, "Caddyfile"), []byte(global+site), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// Start runs Caddy and waits until it answers.
func (c *Caddy) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()

	c.logs = &syncBuffer{}
	cmd := exec.Command(caddyBin, "run", "--config", filepath.Join(c.Dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+c.Dir, "XDG_DATA_HOME="+c.Dir, "XDG_CONFIG_HOME="+c.Dir)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdout = c.logs
	cmd.Stderr = &teeBuffer{c.logs, c.allLogs}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = cmd

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port), 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("caddy did not start:\n%s", c.logs.String())
}

// Stop ends the process gracefully.
func (c *Caddy) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// Kill ends the process at once, as a crash would: nothing is flushed or
// closed.
func (c *Caddy) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.cmd = nil
}

// Restart stops and starts the process on the same data directory.
func (c *Caddy) Restart() {
	c.Stop()
	c.Start()
}

// Reload loads a new Caddyfile through the admin API.
func (c *Caddy) Reload(site string) {
	c.t.Helper()
	c.WriteConfig(site)
	cmd := exec.Command(caddyBin, "reload", "--config", filepath.Join(c.Dir, "Caddyfile"),
		"--adapter", "caddyfile", "--address", fmt.Sprintf("127.0.0.1:%d", c.Admin), "--force")
	cmd.Env = append(os.Environ(), c.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("reload: %v\n%s", err, out)
	}
}

// Logs returns everything the process has logged in this test, across
// restarts.
func (c *Caddy) Logs() string { return c.allLogs.String() }

// Handoff runs a "caddy handoff" subcommand and returns its output.
func Handoff(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, append([]string{"handoff"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// noRedirect is a client with cookies that does not follow redirects.
func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type teeBuffer struct{ a, b *syncBuffer }

func (t *teeBuffer) Write(p []byte) (int, error) {
	_, _ = t.b.Write(p)
	return t.a.Write(p)
}
