package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate and key for mx.yubin.test.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "mx.yubin.test"},
		DNSNames:     []string{"mx.yubin.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestStartTLSAndSMTPS(t *testing.T) {
	swaks := needTool(t, "swaks")
	certDir := t.TempDir()
	cert, key := writeCert(t, certDir)
	smtps := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := deferringNode(t, fmt.Sprintf("smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_security_level = may\n", cert, key))
	os.WriteFile(filepath.Join(n.Dir, "master.cf"), []byte(n.masterC+smtps+" inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n"), 0o644)
	n.start()
	host, port, _ := strings.Cut(n.SMTP, ":")
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--from", "a@yubin.test", "--to", "b@remote.example").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250-STARTTLS") || !strings.Contains(string(out), "queued as") {
		t.Fatalf("STARTTLS: %v\n%s", err, out)
	}
	sh, sp, _ := strings.Cut(smtps, ":")
	out, err = exec.Command(swaks, "--server", sh, "--port", sp, "--tlsc", "--from", "a@yubin.test", "--to", "c@remote.example").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "queued as") {
		t.Fatalf("smtps: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "TLSv1.3") && !strings.Contains(string(out), "TLSv1.2") {
		t.Errorf("no TLS version reported:\n%s", out)
	}
	waitFor(t, 10*time.Second, "two queued messages", func() bool { return len(n.queue()) == 2 })
}

// A renewed certificate is served without a restart.
func TestCertificateReload(t *testing.T) {
	certDir := t.TempDir()
	cert, key := writeCert(t, certDir)
	n := deferringNode(t, fmt.Sprintf("smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n", cert, key))
	n.start()
	serial := func() *big.Int {
		c, err := net.DialTimeout("tcp", n.SMTP, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tp := textproto.NewConn(c)
		tp.ReadResponse(220)
		tp.PrintfLine("EHLO c.example")
		tp.ReadResponse(250)
		tp.PrintfLine("STARTTLS")
		if _, _, err := tp.ReadResponse(220); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		return tc.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial()
	time.Sleep(1100 * time.Millisecond) // a newer modification time
	writeCert(t, certDir)
	if second := serial(); second.Cmp(first) == 0 {
		t.Fatal("the old certificate is still served after renewal")
	}
}
