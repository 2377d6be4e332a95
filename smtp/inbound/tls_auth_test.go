package inbound

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/sasl"
)

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.example.com"},
		DNSNames:     []string{"mx.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
		CipherSuites: nil,
	}
}

// handshake turns the connection into a TLS client connection after the
// server's 220 to STARTTLS.
func (c *client) handshake() *tls.Conn {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.com"}) // self-signed test certificate
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return tc
}

// fakeVerifier knows user/password pairs; the password "tempfail" makes
// it fail temporarily.
type fakeVerifier map[string]string

func (f fakeVerifier) Verify(_ context.Context, c sasl.Credentials) (string, error) {
	if c.Password == "tempfail" {
		return "", errors.New("backend down")
	}
	if pw, ok := f[c.Username]; ok && pw == c.Password && (c.AuthzID == "" || c.AuthzID == c.Username) {
		return c.Username, nil
	}
	return "", sasl.ErrInvalidCredentials
}

func TestStartTLSAndAuth(t *testing.T) {
	ts := startServer(t, func(s *Settings) {
		s.TLSConfig = selfSignedTLS(t)
		s.SASL = fakeVerifier{"alice": "secret"}
	})
	c := dialFrom(t, ts.addr, "127.0.0.2")
	c.reply()
	ehlo := c.cmd("EHLO client.example")
	if !strings.Contains(ehlo, "250-VRFY\n250-STARTTLS\n250-ENHANCEDSTATUSCODES") || strings.Contains(ehlo, "AUTH") {
		t.Fatalf("EHLO before TLS:\n%s", ehlo)
	}
	if got := c.cmd("AUTH PLAIN"); got != "538 5.7.11 Encryption required for requested authentication mechanism" {
		t.Errorf("AUTH before TLS: %q", got)
	}
	if got := c.cmd("STARTTLS"); got != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := c.handshake()
	ehlo = c.cmd("EHLO client.example")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "250-AUTH PLAIN LOGIN\n") {
		t.Fatalf("EHLO after TLS:\n%s", ehlo)
	}
	bad := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong"))
	if got := c.cmd("AUTH PLAIN " + bad); got != "535 5.7.8 Error: authentication failed: authentication failure" {
		t.Errorf("bad AUTH: %q", got)
	}
	good := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))
	if got := c.cmd("AUTH PLAIN " + good); got != "235 2.7.0 Authentication successful" {
		t.Fatalf("AUTH: %q", got)
	}
	c.cmd("MAIL FROM:<alice@example.com>")
	if got := c.cmd("RCPT TO:<u@remote.example>"); got != "250 2.1.5 Ok" {
		t.Fatalf("authenticated relay: %q", got)
	}
	c.cmd("DATA")
	c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("DATA: %q", got)
	}
	body := string(ts.q.bodies[0])
	// Go picks AES-GCM or ChaCha20 depending on the CPU.
	suite := tc.ConnectionState().CipherSuite
	bits := "256/256"
	if suite == tls.TLS_AES_128_GCM_SHA256 {
		bits = "128/128"
	}
	want := "Received: from client.example (unknown [127.0.0.2])\r\n" +
		"\t(using TLSv1.3 with cipher " + tls.CipherSuiteName(suite) + " (" + bits + " bits))\r\n" +
		"\t(No client certificate requested)\r\n" +
		"\tby mx.example.com (yubin) with ESMTPSA id 4F2A81C0D4A\r\n"
	if !strings.HasPrefix(body, want) {
		t.Errorf("body %q", body)
	}
	if ts.q.msgs[0].Protocol != "ESMTPSA" {
		t.Errorf("protocol %q", ts.q.msgs[0].Protocol)
	}
	c.cmd("QUIT")
	log := ts.waitLog(t, "disconnect from")
	for _, want := range []string{
		"warning: unknown[127.0.0.2]: SASL PLAIN authentication failed: authentication failure",
		"4F2A81C0D4A: client=unknown[127.0.0.2], sasl_method=PLAIN, sasl_username=alice",
		"disconnect from unknown[127.0.0.2] ehlo=2 starttls=1 auth=1/3 mail=1 rcpt=1 data=1 quit=1 commands=8/10",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
