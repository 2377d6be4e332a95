package outbound

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// selfSigned makes a certificate for names (and 127.0.0.1).
func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestDeliverSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t, "mx.example.test")
	dnsAddr, _ := startDNS(t,
		"example.test. 300 IN MX 10 mx.example.test.",
		"mx.example.test. 300 IN A 127.0.0.1",
		"other.test. 300 IN MX 10 mx.example.test.",
	)
	newTLSServer := func(offer bool) *fakeServer {
		return newFakeServer(t, "127.0.0.1", func(s *fakeServer) {
			s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			if offer {
				s.exts = append(s.exts, "STARTTLS")
			}
		})
	}
	tests := []struct {
		name    string
		level   string
		roots   *x509.CertPool
		offer   bool
		nexthop string // %d is the port
		status  Status
		dsn     string
		reply   string // prefix
		wantTLS bool
	}{
		{"may uses TLS without verification", TLSMay, nil, true, "[127.0.0.1]:%d", Sent, "2.0.0", "250 2.0.0 Ok", true},
		{"may without STARTTLS is plaintext", TLSMay, nil, false, "[127.0.0.1]:%d", Sent, "2.0.0", "250 2.0.0 Ok", false},
		{"none ignores STARTTLS", TLSNone, nil, true, "[127.0.0.1]:%d", Sent, "2.0.0", "250 2.0.0 Ok", false},
		{"encrypt needs STARTTLS", TLSEncrypt, nil, false, "[127.0.0.1]:%d", Deferred, "4.7.4",
			"TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]", false},
		{"encrypt accepts any certificate", TLSEncrypt, nil, true, "[127.0.0.1]:%d", Sent, "2.0.0", "250 2.0.0 Ok", true},
		{"verify rejects an untrusted certificate", TLSVerify, x509.NewCertPool(), true, "[mx.example.test]:%d", Deferred, "4.7.5",
			"Server certificate not verified: mx.example.test[127.0.0.1]", false},
		{"verify checks the MX host name", TLSVerify, pool, true, "example.test:%d", Sent, "2.0.0", "250 2.0.0 Ok", true},
		{"secure matches a subdomain of the nexthop", TLSSecure, pool, true, "example.test:%d", Sent, "2.0.0", "250 2.0.0 Ok", true},
		{"secure rejects a foreign nexthop", TLSSecure, pool, true, "other.test:%d", Deferred, "4.7.5",
			"Server certificate not verified: mx.example.test[127.0.0.1]", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTLSServer(tc.offer)
			c := mustClient(t, Options{TLSLevel: tc.level, TLSConfig: &tls.Config{RootCAs: tc.roots},
				Resolver: newResolver(t, dnsAddr)})
			out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: fmt.Sprintf(tc.nexthop, s.port),
				Sender: "s@y.test", Recipients: rcpts("u@example.test"), Body: body("hi\n")})
			r := out.Results[0]
			if r.Status != tc.status || r.DSN != tc.dsn || !strings.HasPrefix(r.Reply, tc.reply) {
				t.Errorf("got %v %s %q, want %v %s %q...", r.Status, r.DSN, r.Reply, tc.status, tc.dsn, tc.reply)
			}
			s.mu.Lock()
			seen := s.tlsSeen
			s.mu.Unlock()
			if seen != tc.wantTLS && tc.status == Sent {
				t.Errorf("TLS used = %v, want %v", seen, tc.wantTLS)
			}
		})
	}
}

// lmtpBackend rejects some recipients after DATA, per recipient.
type lmtpBackend struct {
	mu       sync.Mutex
	messages []string
}

func (b *lmtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &lmtpSession{b: b}, nil }

type lmtpSession struct {
	b     *lmtpBackend
	rcpts []string
}

func (s *lmtpSession) Reset()                               { s.rcpts = nil }
func (s *lmtpSession) Logout() error                        { return nil }
func (s *lmtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *lmtpSession) Data(r io.Reader) error               { return errors.New("LMTPData expected") }
func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "unknown@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User doesn't exist: " + to}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.messages = append(s.b.messages, string(data))
	s.b.mu.Unlock()
	for _, rc := range s.rcpts {
		switch {
		case strings.HasPrefix(rc, "full@"):
			status.SetStatus(rc, &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox is full"})
		case strings.HasPrefix(rc, "gone@"):
			status.SetStatus(rc, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Quota exceeded"})
		default:
			status.SetStatus(rc, nil)
		}
	}
	return nil
}

func startLMTP(t *testing.T, network, addr string) (*lmtpBackend, net.Listener) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	be := &lmtpBackend{}
	srv := smtp.NewServer(be)
	srv.LMTP = true
	srv.Domain = "lmtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return be, ln
}

func TestDeliverLMTP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	be, _ := startLMTP(t, "unix", sock)
	_, tcpLn := startLMTP(t, "tcp", "127.0.0.1:0")
	tcpPort := tcpLn.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		nexthop, namaddr, relay string
	}{
		{"unix:" + sock, "client.test[" + sock + "]", "client.test[" + sock + "]"},
		{fmt.Sprintf("inet:127.0.0.1:%d", tcpPort), "127.0.0.1[127.0.0.1]", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", tcpPort)},
	} {
		c := mustClient(t, Options{})
		out := c.Deliver(context.Background(), &Request{Transport: "lmtp", Nexthop: tc.nexthop, Sender: "s@y.test",
			Recipients: rcpts("ok@x.test", "unknown@x.test", "full@x.test", "gone@x.test"), Body: body("Subject: l\n\nhello\n")})
		if len(out.Results) != 4 {
			t.Fatalf("%d results", len(out.Results))
		}
		if r := out.Results[0]; r.Status != Sent || !strings.HasPrefix(r.Reply, "250 2.0.0 ") || r.Relay != tc.relay {
			t.Errorf("ok: %+v", r)
		}
		checkResult(t, out.Results[1], Bounced, "5.1.1", "host "+tc.namaddr+" said: 550 5.1.1 User doesn't exist: unknown@x.test (in reply to RCPT TO command)")
		checkResult(t, out.Results[2], Deferred, "4.2.2", "host "+tc.namaddr+" said: 452 4.2.2 <full@x.test> Mailbox is full (in reply to end of DATA command)")
		checkResult(t, out.Results[3], Bounced, "5.2.2", "host "+tc.namaddr+" said: 552 5.2.2 <gone@x.test> Quota exceeded (in reply to end of DATA command)")
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.messages) != 1 || be.messages[0] != "Subject: l\r\n\r\nhello\r\n" {
		t.Errorf("LMTP server received %q", be.messages)
	}

	// A missing socket is a connect failure worded like Postfix's.
	c := mustClient(t, Options{})
	missing := filepath.Join(t.TempDir(), "nope.sock")
	out := c.Deliver(context.Background(), &Request{Transport: "lmtp", Nexthop: "unix:" + missing, Sender: "s@y.test",
		Recipients: rcpts("ok@x.test"), Body: body("hi\n")})
	checkResult(t, out.Results[0], Deferred, "4.4.1", "connect to client.test["+missing+"]: No such file or directory")
}

func findSmtpSink(t *testing.T) string {
	for _, p := range []string{"/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink", "/usr/libexec/postfix/smtp-sink"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("smtp-sink"); err == nil {
		return p
	}
	t.Skip("smtp-sink (Postfix) not installed; CI installs it")
	return ""
}

func TestDeliverToPostfixSmtpSink(t *testing.T) {
	bin := findSmtpSink(t)
	port := closedPort(t)
	// Not t.TempDir(): its parent is private, and smtp-sink drops to nobody.
	dump, err := os.MkdirTemp("", "yubin-smtp-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dump) })
	args := []string{"-d", filepath.Join(dump, "%M."), "127.0.0.1:" + fmt.Sprint(port), "5"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
		if err := os.Chmod(dump, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not start listening: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := mustClient(t, Options{})
	msg := "From: s@y.test\nTo: u@x.test\nSubject: sink\n\nline one\n.dot line\n"
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: fmt.Sprintf("[127.0.0.1]:%d", port),
		Sender: "s@y.test", Recipients: rcpts("u@x.test", "v@x.test"), Body: body(msg), Size: int64(len(msg))})
	for _, r := range out.Results {
		if r.Status != Sent || !strings.HasPrefix(r.Reply, "250 ") || r.DSN[0] != '2' {
			t.Errorf("smtp-sink delivery: %+v", r)
		}
	}
	// smtp-sink -d writes the received message (with its own headers).
	var got []byte
	for time.Now().Before(deadline.Add(5 * time.Second)) {
		files, _ := filepath.Glob(filepath.Join(dump, "*"))
		if len(files) > 0 {
			got, _ = os.ReadFile(files[0])
			if strings.Contains(string(got), "\n.dot line") {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(got), "Subject: sink") || !strings.Contains(string(got), "\n.dot line") {
		t.Errorf("smtp-sink stored %q", got)
	}
}
