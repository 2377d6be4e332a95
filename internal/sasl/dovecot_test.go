package sasl

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/peertest"
)

func TestDovecotRealServer(t *testing.T) {
	users := "alice:{BLF-CRYPT}" + bcryptHash(t, "secret") + "\n" +
		"bob@example.com:{PLAIN}sp ace\\back=\n"
	socket := peertest.StartDovecotAuth(t, users)
	d := NewDovecot(socket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	creds := Credentials{Mechanism: "PLAIN", Username: "alice", Password: "secret",
		Client: netip.MustParseAddr("127.0.0.2"), Local: netip.MustParseAddr("127.0.0.1"), Secured: true}
	if user, err := d.Verify(ctx, creds); err != nil || user != "alice" {
		t.Fatalf("good password: %q %v", user, err)
	}
	// Dovecot delays repeated failures from one address (auth penalty):
	// each attempt comes from its own address.
	creds.Password, creds.Client = "wrong", netip.MustParseAddr("127.0.0.3")
	if _, err := d.Verify(ctx, creds); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	creds.Username, creds.Password, creds.Client = "nobody", "secret", netip.MustParseAddr("127.0.0.4")
	if _, err := d.Verify(ctx, creds); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// Passwords travel base64-encoded, unharmed.
	creds.Username, creds.Password, creds.Client = "bob@example.com", "sp ace\\back=", netip.MustParseAddr("127.0.0.5")
	if user, err := d.Verify(ctx, creds); err != nil || user != "bob@example.com" {
		t.Fatalf("password with specials: %q %v", user, err)
	}
}

// fakeDovecot serves one scripted conversation per connection: the
// handshake lines, then reply(authLine).
func fakeDovecot(t *testing.T, handshake string, reply func(authLine string) string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fakedc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "auth")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				for i := 0; i < 2; i++ { // VERSION, CPID
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
				}
				c.Write([]byte(handshake))
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				answer := reply(strings.TrimSuffix(line, "\n"))
				if answer == "" {
					return // close without answering
				}
				c.Write([]byte(answer))
				r.ReadString('\n') // hold the connection until the client closes it
			}()
		}
	}()
	return path
}

const goodHandshake = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tabc\nDONE\n"

func TestDovecotProtocol(t *testing.T) {
	creds := Credentials{Mechanism: "LOGIN", Username: "al\x01ice", Password: "pw",
		Client: netip.MustParseAddr("::ffff:192.0.2.1"), Local: netip.MustParseAddr("192.0.2.25")}
	tests := []struct {
		name      string
		handshake string
		reply     string
		wantUser  string
		invalid   bool // ErrInvalidCredentials
		wantErr   string
	}{
		{"ok canonical user", goodHandshake, "OK\t1\tuser=alice\x01t2\n", "alice\t2", false, ""},
		{"ok without user", goodHandshake, "OK\t1\n", "al\x01ice", false, ""},
		{"fail", goodHandshake, "FAIL\t1\tuser=alice\n", "", true, ""},
		{"fail reason", goodHandshake, "FAIL\t1\treason=Password expired\n", "", true, "Password expired"},
		{"temp fail", goodHandshake, "FAIL\t1\ttemp\treason=db down\n", "", false, "temporary failure: db down"},
		{"temp fail code", goodHandshake, "FAIL\t1\tcode=temp_fail\n", "", false, "temporary failure"},
		{"other id first", goodHandshake, "OK\t7\tuser=x\nOK\t1\tuser=alice\n", "alice", false, ""},
		{"cont", goodHandshake, "CONT\t1\tAAAA\n", "", false, "unexpected CONT"},
		{"no plain", "VERSION\t1\t2\nMECH\tLOGIN\nDONE\n", "", "", false, "does not offer PLAIN"},
		{"version 2", "VERSION\t2\t0\nMECH\tPLAIN\nDONE\n", "", "", false, "unsupported protocol version"},
		{"closed", goodHandshake, "", "", false, "AUTH reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := make(chan string, 1)
			path := fakeDovecot(t, tt.handshake, func(line string) string { requests <- line; return tt.reply })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			user, err := NewDovecot(path).Verify(ctx, creds)
			switch {
			case tt.invalid:
				if !errors.Is(err, ErrInvalidCredentials) || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("err %v, want invalid credentials %q", err, tt.wantErr)
				}
			case tt.wantErr != "":
				if err == nil || errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want temporary %q", err, tt.wantErr)
				}
			default:
				if err != nil || user != tt.wantUser {
					t.Fatalf("got %q %v, want %q", user, err, tt.wantUser)
				}
			}
			if tt.handshake == goodHandshake {
				// "\x00al\x01ice\x00pw" in base64; the mechanism the client
				// used is irrelevant: Dovecot always gets PLAIN.
				want := "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.25\trip=192.0.2.1\tresp=AGFsAWljZQBwdw=="
				if got := <-requests; got != want {
					t.Errorf("request %q\nwant    %q", got, want)
				}
			}
		})
	}
}

func TestDovecotTimeoutAndMissingSocket(t *testing.T) {
	// A server that never finishes the handshake.
	path := fakeDovecot(t, "VERSION\t1\t2\n", func(string) string { return "" })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewDovecot(path).Verify(ctx, Credentials{Username: "u", Password: "p"})
	if err == nil || errors.Is(err, ErrInvalidCredentials) || time.Since(start) > 5*time.Second {
		t.Fatalf("hung server: %v after %v", err, time.Since(start))
	}
	_, err = NewDovecot(filepath.Join(t.TempDir(), "none")).Verify(context.Background(), Credentials{Username: "u", Password: "p"})
	if err == nil || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("missing socket: %v", err)
	}
}

func TestTabEscape(t *testing.T) {
	for _, s := range []string{"", "plain", "a\tb", "\x01", "x\r\ny\x01t"} {
		if got := tabUnescape(tabEscape(s)); got != s {
			t.Errorf("round trip %q -> %q -> %q", s, tabEscape(s), got)
		}
		if strings.ContainsAny(tabEscape(s), "\t\r\n") {
			t.Errorf("escaped %q still has separators", s)
		}
	}
}
