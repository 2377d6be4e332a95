package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func mustAuthority(t *testing.T, secret, node string) *authority {
	t.Helper()
	a, err := newAuthority(secret, node)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthorityDerivation(t *testing.T) {
	a := mustAuthority(t, testSecret, "a")
	b := mustAuthority(t, testSecret, "b")
	other := mustAuthority(t, testSecret+"x", "a")
	if !bytes.Equal(a.caCert.Raw, b.caCert.Raw) {
		t.Fatal("same secret, different CA certificates")
	}
	if bytes.Equal(a.caCert.Raw, other.caCert.Raw) {
		t.Fatal("different secrets, same CA certificate")
	}
	if _, err := newAuthority("short", "a"); err == nil {
		t.Fatal("short secret accepted")
	}

	certA, err := a.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.verifyPeer(certA.Certificate, nil); err != nil {
		t.Fatalf("member certificate refused: %v", err)
	}
	if err := other.verifyPeer(certA.Certificate, nil); err == nil {
		t.Fatal("certificate of another cluster accepted")
	}
	if err := b.verifyPeer(nil, nil); err == nil {
		t.Fatal("missing certificate accepted")
	}
	if err := b.verifyPeer([][]byte{[]byte("garbage")}, nil); err == nil {
		t.Fatal("garbage certificate accepted")
	}
	// The CA itself is not a node certificate, nor is a self-signed one.
	if err := b.verifyPeer([][]byte{a.caCert.Raw}, nil); err == nil {
		t.Fatal("CA certificate accepted as a node")
	}
}

func TestCertificateLifetime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := mustAuthority(t, testSecret, "a")
	a.now = func() time.Time { return now }
	first, err := a.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := a.certificate(); again != first {
		t.Fatal("certificate reissued before half its lifetime")
	}
	v := mustAuthority(t, testSecret, "v")

	for _, c := range []struct {
		name string
		at   time.Duration
		ok   bool
	}{
		{"skewed clock", -30 * time.Minute, true},
		{"fresh", 0, true},
		{"nearly expired", certLifetime - time.Minute, true},
		{"expired", certLifetime + time.Minute, false},
		{"not yet valid", -2 * certBackdate, false},
	} {
		v.now = func() time.Time { return now.Add(c.at) }
		if err := v.verifyPeer(first.Certificate, nil); (err == nil) != c.ok {
			t.Errorf("%s: verify = %v, want ok=%v", c.name, err, c.ok)
		}
	}

	now = now.Add(certLifetime/2 + time.Second)
	renewed, err := a.certificate()
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatal("certificate not renewed after half its lifetime")
	}
}

// echoMux starts a mux whose forward protocol echoes one line.
func echoMux(t *testing.T, a *authority) *mux {
	t.Helper()
	m := newMux(listenLoopback(t), a.serverConfig(), testLogger(), func(_ context.Context, _ byte, c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf)
		}
	})
	t.Cleanup(func() { m.close() })
	return m
}

func TestHandshakeNeedsTheSecret(t *testing.T) {
	good := mustAuthority(t, testSecret, "good")
	rogue := mustAuthority(t, "a completely different secret", "rogue")
	m := echoMux(t, good)
	addr := m.ln.Addr().String()

	talk := func(a *authority) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := (&dialer{client: a.clientConfig()}).dial(ctx, addr, protoForward)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			return "", err
		}
		buf := make([]byte, 5)
		_, err = io.ReadFull(c, buf)
		return string(buf), err
	}
	if got, err := talk(good); err != nil || got != "hello" {
		t.Fatalf("member: %q, %v", got, err)
	}
	// The server refuses the rogue's certificate: under TLS 1.3 the client
	// learns it on its first read, and nothing was served.
	if got, err := talk(rogue); err == nil {
		t.Fatalf("rogue client was served: %q", got)
	}

	// A member does not talk to a rogue server either: the client's own
	// handshake fails.
	rm := echoMux(t, rogue)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := (&dialer{client: good.clientConfig()}).dial(ctx, rm.ln.Addr().String(), protoRaft)
	if err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("dial to rogue server: %v", err)
	}

	// Plain TLS without a client certificate gets nowhere.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte{protoForward})
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("client without certificate was served")
	}
}

func TestMuxHandsRaftConnectionsToAccept(t *testing.T) {
	a := mustAuthority(t, testSecret, "a")
	m := echoMux(t, a)
	sl := &streamLayer{m: m, d: &dialer{client: a.clientConfig()}, advertise: advertiseAddr(m.ln.Addr().String())}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := sl.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := sl.Dial(raft.ServerAddress(m.ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("raft!"))
	select {
	case sc := <-accepted:
		buf := make([]byte, 5)
		sc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "raft!" {
			t.Fatalf("raft stream: %q, %v", buf, err)
		}
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("raft connection not handed to Accept")
	}
	if sl.Addr().String() != m.ln.Addr().String() {
		t.Fatalf("Addr = %s", sl.Addr())
	}
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
