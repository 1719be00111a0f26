package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// A server is a process the benchmark started, listening on loopback.
type server struct {
	name string
	url  string
	cmd  *exec.Cmd
	log  *os.File
}

// freePort returns a TCP port free on loopback right now.
func freePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts returns n distinct free ports on loopback, each held until all
// are found.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start runs the command, logging to a file in dir, and waits until ready
// answers 2xx or 3xx.
func start(name, dir, url, ready string, cmd *exec.Cmd) (*server, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("creating log of %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, url: url, cmd: cmd, log: log}
	if err := waitReady(ready, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start (see %s): %w", name, log.Name(), err)
	}
	return s, nil
}

func waitReady(url string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the process gracefully, or kills it after a while.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}

// caddyGlobal is the global block every Caddy of the benchmark gets, with
// the admin endpoint's address or "off".
const caddyGlobal = `{
	admin %s
	auto_https off
	storage file_system %s
}
`

// command runs bin with args, on the CPUs given as taskset(1) takes them,
// or on any CPU when cpus is empty.
func command(cpus, bin string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"--cpu-list", cpus, bin}, args...)...)
}

// startCaddy runs o's Caddy binary on a Caddyfile made from site, which is
// given the port. admin is the address of the admin endpoint, or "off".
func startCaddy(o options, dir, name, admin string, env []string,
	site func(port int) string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", home, err)
	}
	config := fmt.Sprintf(caddyGlobal, admin, filepath.Join(home, "data")) + site(port)
	file := filepath.Join(home, "Caddyfile")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", file, err)
	}

	cmd := command(o.serverCPUs, o.caddy, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	cmd.Env = append(cmd.Env, env...)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	return start(name, dir, url, url+"/", cmd)
}

// oauth2ProxySecret is the cookie secret of the oauth2-proxy under test.
const oauth2ProxySecret = "bench-cookie-secret-0123456789ab"

// startOAuth2Proxy runs o's oauth2-proxy against the provider at issuer,
// with its default logging, PKCE, and a static upstream.
func startOAuth2Proxy(o options, dir, issuer string) (*server, error) {
	if o.oauth2Proxy == "" {
		return nil, errors.New("no oauth2-proxy binary given")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := command(o.serverCPUs, o.oauth2Proxy,
		"--http-address=127.0.0.1:"+fmt.Sprint(port),
		"--provider=oidc",
		"--oidc-issuer-url="+issuer,
		"--client-id="+idpClientID,
		"--client-secret="+idpClientSecret,
		"--redirect-url="+url+"/oauth2/callback",
		"--cookie-secret="+oauth2ProxySecret,
		"--cookie-secure=false",
		"--code-challenge-method=S256",
		"--email-domain=*",
		"--upstream=static://200",
	)
	return start("oauth2-proxy", dir, url, url+"/ping", cmd)
}
