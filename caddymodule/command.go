package caddymodule

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/bothandoff/caddy-bothandoff/botkit"
	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "handoff",
		Usage: "keygen|link|verify|status|cancel|outbox [flags]",
		Short: "Makes keys and links, and calls the bot API of bot_handoff",
		Long: `
Serves operators and bots written as shell scripts:

  keygen   makes a link key: a shared secret, or an Ed25519 or P-256 key pair
  link     signs a link that starts a flow for a conversation and user
  verify   checks the number a user pasted, and prints the flow's result
  status   prints where a conversation's flow stands
  cancel   cancels a conversation's open flow
  outbox   lists the deliveries waiting or given up, and retries them now

Links and API tokens are signed with the secret in $HANDOFF_LINK_SECRET
unless --secret-env, --secret-file or --key names another key.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(keygenCommand(), linkCommand(), verifyCommand(),
				statusCommand(), cancelCommand(), outboxCommand(), backupCommand())
		},
	})
}

func keygenCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "keygen [--type secret|ed25519|es256] [--out FILE]",
		Short: "Makes a link key",
		Long: `A secret is printed (43 characters, 32 random bytes, base64url); give it to
the bot and to link_key secret. A key pair is written to FILE (private, for
the bot) and FILE.pub (public, for link_key public_key).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, _ := cmd.Flags().GetString("type")
			out, _ := cmd.Flags().GetString("out")
			return keygen(typ, out)
		},
	}
	c.Flags().String("type", "secret", "secret, ed25519 or es256")
	c.Flags().String("out", "", "file for the private key of a key pair")
	return c
}

func keygen(typ, out string) error {
	if typ == "secret" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		fmt.Println(base64.RawURLEncoding.EncodeToString(b))
		return nil
	}
	if out == "" {
		return errors.New("--out FILE is required for a key pair")
	}

	var priv any
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "es256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return fmt.Errorf("unknown key type %q", typ)
	}
	if err != nil {
		return fmt.Errorf("making key: %w", err)
	}
	return writeKeyPair(priv, out)
}

func writeKeyPair(priv any, out string) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encoding private key: %w", err)
	}
	pub := priv.(interface{ Public() crypto.PublicKey }).Public()
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encoding public key: %w", err)
	}
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(out, private, 0o600); err != nil {
		return err
	}
	public := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return os.WriteFile(out+".pub", public, 0o644)
}

// clientFlags adds the flags naming the handler and the bot's key.
func clientFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("url", "", "the handler's URL with its prefix, like https://example.com/handoff")
	f.String("audience", "", "the token audience, if not the URL")
	f.String("issuer", "", "the bot's ID, if the handler checks iss")
	f.String("secret-env", "HANDOFF_LINK_SECRET", "environment variable holding the link secret")
	f.String("secret-file", "", "file holding the link secret")
	f.String("key", "", "PEM file with the bot's private key, instead of a secret")
	f.String("kid", "", "key ID to write in tokens")
}

// conversationFlags adds the flags naming a conversation and user.
func conversationFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("channel", "", "channel ID, like msteams")
	f.String("conversation", "", "conversation ID")
	f.String("user", "", "user ID")
}

func client(cmd *cobra.Command) (*botkit.Client, error) {
	f := cmd.Flags()
	u, _ := f.GetString("url")
	if u == "" {
		return nil, errors.New("--url is required")
	}
	signer, err := signer(cmd)
	if err != nil {
		return nil, err
	}
	aud, _ := f.GetString("audience")
	iss, _ := f.GetString("issuer")
	return &botkit.Client{URL: u, Audience: aud, Issuer: iss, Signer: signer}, nil
}

func signer(cmd *cobra.Command) (flow.Signer, error) {
	f := cmd.Flags()
	kid, _ := f.GetString("kid")
	if keyFile, _ := f.GetString("key"); keyFile != "" {
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			return flow.Signer{}, fmt.Errorf("reading key: %w", err)
		}
		return flow.PrivateKeySigner(kid, pem)
	}
	if file, _ := f.GetString("secret-file"); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return flow.Signer{}, fmt.Errorf("reading secret: %w", err)
		}
		return flow.SecretSigner(kid, trimNewline(b))
	}
	env, _ := f.GetString("secret-env")
	secret := os.Getenv(env)
	if secret == "" {
		return flow.Signer{}, fmt.Errorf("$%s is empty; set it or give --secret-file or --key", env)
	}
	return flow.SecretSigner(kid, []byte(secret))
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func key(cmd *cobra.Command) (flow.Key, error) {
	f := cmd.Flags()
	ch, _ := f.GetString("channel")
	conv, _ := f.GetString("conversation")
	user, _ := f.GetString("user")
	k := flow.Key{ChannelID: ch, ConversationID: conv, UserID: user}
	return k, k.Validate()
}

func linkCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "link --url URL --flow NAME --channel ID --conversation ID --user ID [flags]",
		Short: "Signs a link that starts a flow",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := client(cmd)
			if err != nil {
				return err
			}
			k, err := key(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			name, _ := f.GetString("flow")
			svc, _ := f.GetString("service-url")
			ttl, _ := f.GetDuration("ttl")
			raw, _ := f.GetString("data")
			var data map[string]any
			if raw != "" {
				if err := json.Unmarshal([]byte(raw), &data); err != nil {
					return fmt.Errorf("--data must be a JSON object: %w", err)
				}
			}
			ref := flow.Ref{
				ChannelID: k.ChannelID, ServiceURL: svc,
				Conversation: flow.Conversation{ID: k.ConversationID},
				User:         flow.Account{ID: k.UserID},
			}
			link, err := cl.Link(name, ref, data, ttl)
			if err != nil {
				return err
			}
			fmt.Println(link)
			return nil
		},
	}
	clientFlags(c)
	conversationFlags(c)
	c.Flags().String("flow", "", "the flow to start, as configured")
	c.Flags().String("service-url", "https://localhost/",
		"the bot's service URL, kept in the flow's reference")
	c.Flags().String("data", "", "flow parameters as a JSON object")
	c.Flags().Duration("ttl", 10*time.Minute, "how long the link lives")
	return c
}

func verifyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify --url URL --channel ID --conversation ID --user ID --code NUMBER",
		Short: "Checks a pasted number and prints the result",
		Long:  "Exits 0 and prints the result when the number is right; exits 1 otherwise.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			code, _ := cmd.Flags().GetString("code")
			return apiCall(cmd, func(cl *botkit.Client, k flow.Key) (any, error) {
				return cl.Verify(context.Background(), k, code)
			})
		},
	}
	clientFlags(c)
	conversationFlags(c)
	c.Flags().String("code", "", "the number the user pasted")
	return c
}

func statusCommand() *cobra.Command {
	return conversationCommand("status", "Prints where a conversation's flow stands",
		func(cl *botkit.Client, k flow.Key) (any, error) {
			return cl.Status(context.Background(), k)
		})
}

func cancelCommand() *cobra.Command {
	return conversationCommand("cancel", "Cancels a conversation's open flow",
		func(cl *botkit.Client, k flow.Key) (any, error) {
			return cl.Cancel(context.Background(), k)
		})
}

// conversationCommand is a command that makes one bot API call about a
// conversation, named by the flags alone.
func conversationCommand(name, short string,
	call func(*botkit.Client, flow.Key) (any, error)) *cobra.Command {
	c := &cobra.Command{
		Use:   name + " --url URL --channel ID --conversation ID --user ID",
		Short: short,
		RunE:  func(cmd *cobra.Command, _ []string) error { return apiCall(cmd, call) },
	}
	clientFlags(c)
	conversationFlags(c)
	return c
}

// apiCall runs one bot API call and prints its JSON answer.
func apiCall(cmd *cobra.Command, call func(*botkit.Client, flow.Key) (any, error)) error {
	cl, err := client(cmd)
	if err != nil {
		return err
	}
	k, err := key(cmd)
	if err != nil {
		return err
	}
	cmd.SilenceUsage = true
	res, err := call(cl, k)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func outboxCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "outbox [--address ADDR] [--retry ID | --retry-all]",
		Short: "Lists signal deliveries waiting or given up; retries them now",
		Long: `Asks the running Caddy's admin API for each bot_handoff handler's outbox: the
deliveries not yet made and those given up after max_delivery_age (never their
events). --retry ID, or --retry-all, makes deliveries due now; a given-up
delivery comes back with a fresh age.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			addr, _ := f.GetString("address")
			id, _ := f.GetString("retry")
			all, _ := f.GetBool("retry-all")
			cmd.SilenceUsage = true
			return outbox(addr, id, all)
		},
	}
	c.Flags().String("address", caddy.DefaultAdminListen, "the admin API's address")
	c.Flags().String("retry", "", "the ID of a delivery to retry now")
	c.Flags().Bool("retry-all", false, "retry every delivery now")
	return c
}

func backupCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "backup --handler NAME --output FILE [--address ADDR]",
		Short: "Copies a handler's storage store log while Caddy runs",
		Long: `Asks the running Caddy's admin API for a consistent copy of a bot_handoff
handler's flows (the storage store's log, on the local file system) and writes
it to FILE, a snapshot of the log. NAME is the handler as the outbox command
lists it. To restore, stop Caddy, empty the handler's log directory
(bot_handoff/NAME/log under Caddy's storage) and put FILE in it, named 0.snap.
The copy holds secrets sealed under the state key: keep it as you keep the key.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			addr, _ := f.GetString("address")
			name, _ := f.GetString("handler")
			out, _ := f.GetString("output")
			if name == "" || out == "" {
				return errors.New("--handler and --output are required")
			}
			cmd.SilenceUsage = true
			return backup(addr, name, out)
		},
	}
	c.Flags().String("address", caddy.DefaultAdminListen, "the admin API's address")
	c.Flags().String("handler", "", "the handler, as the outbox command lists it")
	c.Flags().String("output", "", "the file to write")
	return c
}

// backup writes the handler's log snapshot to out, through a temporary file
// renamed into place once complete.
func backup(addr, name, out string) error {
	u := "http://" + addr + "/bot_handoff/backup?handler=" + url.QueryEscape(name)
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Get(u)
	if err != nil {
		return fmt.Errorf("calling the admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("admin API answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}

	f, err := os.CreateTemp(filepath.Dir(out), ".backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %d bytes to %s\n", n, out)
	return nil
}

func outbox(addr, id string, all bool) error {
	u := "http://" + addr + "/bot_handoff/outbox"
	method := http.MethodGet
	if id != "" || all {
		method = http.MethodPost
		if id != "" {
			u += "?id=" + url.QueryEscape(id)
		}
	}

	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	_, err = os.Stdout.Write(body)
	return err
}
