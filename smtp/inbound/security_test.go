package inbound

import (
	"encoding/base64"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/smtp/policy"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tlsAuthServer: STARTTLS, SASL with alice/secret and bob/pw.
func tlsAuthServer(t *testing.T, mutate func(*Settings)) *testServer {
	return startServer(t, func(s *Settings) {
		s.TLSConfig = selfSignedTLS(t)
		s.SASL = fakeVerifier{"alice": "secret", "bob": "pw"}
		if mutate != nil {
			mutate(s)
		}
	})
}

// secureClient connects from addr, says EHLO, STARTTLS and EHLO again.
func secureClient(t *testing.T, ts *testServer, from string) *client {
	c := dialFrom(t, ts.addr, from)
	c.reply()
	c.cmd("EHLO client.example")
	if got := c.cmd("STARTTLS"); got != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", got)
	}
	c.handshake()
	c.cmd("EHLO client.example")
	return c
}

func TestAuthExchanges(t *testing.T) {
	ts := tlsAuthServer(t, nil)
	tests := []struct {
		name  string
		lines []string // client lines; each reply is checked against want
		want  []string
	}{
		{"login with prompts", []string{"AUTH LOGIN", b64("alice"), b64("secret")},
			[]string{"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 Authentication successful"}},
		{"login initial response", []string{"auth login " + b64("bob"), b64("pw")},
			[]string{"334 UGFzc3dvcmQ6", "235 2.7.0 Authentication successful"}},
		{"plain without initial response", []string{"AUTH PLAIN", b64("\x00alice\x00secret")},
			[]string{"334 ", "235 2.7.0 Authentication successful"}},
		{"plain with authzid", []string{"AUTH PLAIN " + b64("alice\x00alice\x00secret")}, []string{"235 2.7.0 Authentication successful"}},
		{"plain other authzid", []string{"AUTH PLAIN " + b64("bob\x00alice\x00secret")},
			[]string{"535 5.7.8 Error: authentication failed: authentication failure"}},
		{"wrong password", []string{"AUTH LOGIN " + b64("alice"), b64("guess")},
			[]string{"334 UGFzc3dvcmQ6", "535 5.7.8 Error: authentication failed: authentication failure"}},
		{"malformed plain", []string{"AUTH PLAIN " + b64("alice")},
			[]string{"535 5.7.8 Error: authentication failed: authentication failure"}},
		{"bad base64", []string{"AUTH PLAIN !!!"}, []string{"501 5.5.2 Cannot decode response"}},
		{"cancel", []string{"AUTH LOGIN", "*"}, []string{"334 VXNlcm5hbWU6", "501 5.7.0 Authentication aborted"}},
		{"unknown mechanism", []string{"AUTH CRAM-MD5"}, []string{"535 5.7.8 Error: authentication failed: Invalid authentication mechanism"}},
		{"no mechanism", []string{"AUTH"}, []string{"501 5.5.4 Syntax: AUTH mechanism"}},
		{"temporary failure", []string{"AUTH PLAIN " + b64("\x00alice\x00tempfail")}, []string{"454 4.7.0 Temporary authentication failure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := secureClient(t, ts, "127.0.0.2")
			for i, line := range tt.lines {
				if got := c.cmd(line); got != tt.want[i] {
					t.Fatalf("%q: got %q, want %q", line, got, tt.want[i])
				}
			}
			if strings.HasPrefix(tt.want[len(tt.want)-1], "235") {
				if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); got != "503 5.5.1 Error: already authenticated" {
					t.Fatalf("second AUTH: %q", got)
				}
			}
			c.cmd("QUIT")
		})
	}
	log := ts.waitLog(t, "SASL PLAIN authentication problem")
	for _, want := range []string{
		"warning: unknown[127.0.0.2]: SASL LOGIN authentication failed: authentication failure",
		"warning: unknown[127.0.0.2]: SASL PLAIN authentication failed: malformed SASL response: PLAIN needs authzid NUL user NUL password",
		"warning: unknown[127.0.0.2]: SASL PLAIN authentication problem: backend down",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "guess") || strings.Contains(log, "secret") {
		t.Errorf("a password reached the log:\n%s", log)
	}
}

func TestAuthNeedsTLSUnlessAllowed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		ts := startServer(t, func(s *Settings) {
			s.SASL = fakeVerifier{"alice": "secret"}
			s.AllowPlaintextAuth = allow
		})
		c := dialFrom(t, ts.addr, "127.0.0.2")
		c.reply()
		ehlo := c.cmd("EHLO client.example")
		got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret"))
		if allow {
			if !strings.Contains(ehlo, "250-AUTH PLAIN LOGIN") || got != "235 2.7.0 Authentication successful" {
				t.Errorf("plaintext AUTH allowed: EHLO %q, AUTH %q", ehlo, got)
			}
		} else if strings.Contains(ehlo, "AUTH") || got != "538 5.7.11 Encryption required for requested authentication mechanism" {
			t.Errorf("plaintext AUTH by default: EHLO %q, AUTH %q", ehlo, got)
		}
	}
	// Without SASL there is no AUTH at all.
	ts := startServer(t, func(s *Settings) { s.TLSConfig = selfSignedTLS(t) })
	c := secureClient(t, ts, "127.0.0.2")
	if got := c.cmd("AUTH PLAIN " + b64("\x00a\x00b")); got != "503 5.5.1 Error: authentication not enabled" {
		t.Errorf("AUTH without SASL: %q", got)
	}
}

func TestTLSRequired(t *testing.T) {
	ts := tlsAuthServer(t, func(s *Settings) {
		s.TLSRequired = true
		s.AllowPlaintextAuth = true // encrypt overrides it
	})
	c := dialFrom(t, ts.addr, "127.0.0.2")
	c.reply()
	if ehlo := c.cmd("EHLO client.example"); strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO: %q", ehlo)
	}
	if got := c.cmd("MAIL FROM:<a@remote.example>"); got != "530 5.7.0 Must issue a STARTTLS command first" {
		t.Fatalf("MAIL before STARTTLS: %q", got)
	}
	if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); got != "538 5.7.11 Encryption required for requested authentication mechanism" {
		t.Fatalf("AUTH before STARTTLS: %q", got)
	}
	c.cmd("STARTTLS")
	c.handshake()
	c.cmd("EHLO client.example")
	if got := c.cmd("MAIL FROM:<a@remote.example>"); got != "250 2.1.0 Ok" {
		t.Fatalf("MAIL after STARTTLS: %q", got)
	}
}

func TestAuthFailureLimit(t *testing.T) {
	nets, err := policy.ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	ts := tlsAuthServer(t, func(s *Settings) {
		s.Limits.AuthFailureRate = 2
		s.Limits.Exceptions = nets
	})
	bad := "AUTH PLAIN " + b64("\x00alice\x00guess")
	c := secureClient(t, ts, "127.0.0.2")
	for i := 0; i < 2; i++ {
		if got := c.cmd(bad); !strings.HasPrefix(got, "535 ") {
			t.Fatalf("failure %d: %q", i+1, got)
		}
	}
	// The limit is reached: even the right password is not tried.
	if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); got != "421 4.7.0 mx.example.com Error: too many failed AUTH attempts from 127.0.0.2" {
		t.Fatalf("over the limit: %q", got)
	}
	if !c.closed() {
		t.Fatal("connection left open after 421")
	}
	// A new connection from the same address is limited too ...
	c = secureClient(t, ts, "127.0.0.2")
	if got := c.cmd(bad); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Fatalf("new connection: %q", got)
	}
	// ... but another address, and an exempt one, are not.
	for _, from := range []string{"127.0.0.3", "127.0.0.1"} {
		c = secureClient(t, ts, from)
		if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); got != "235 2.7.0 Authentication successful" {
			t.Fatalf("from %s: %q", from, got)
		}
	}
	ts.waitLog(t, "warning: AUTH failure rate limit exceeded: 2 from unknown[127.0.0.2] for service smtp")
}

func TestAuthFailureSleeps(t *testing.T) {
	const sleep = 300 * time.Millisecond
	ts := tlsAuthServer(t, func(s *Settings) { s.ErrorSleepTime = sleep })
	c := secureClient(t, ts, "127.0.0.2")
	start := time.Now()
	if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00guess")); !strings.HasPrefix(got, "535 ") {
		t.Fatalf("AUTH: %q", got)
	}
	if d := time.Since(start); d < sleep {
		t.Fatalf("failed AUTH answered after %v, want at least %v", d, sleep)
	}
	start = time.Now()
	if got := c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); !strings.HasPrefix(got, "235 ") {
		t.Fatalf("AUTH: %q", got)
	}
	if got := c.cmd("NOOP"); got != "250 2.0.0 Ok" {
		t.Fatalf("NOOP: %q", got)
	}
}

func TestAuthenticatedSenderHeaderAndLoginMaps(t *testing.T) {
	logins := mapTable{"alice@example.com": "alice", "bob@example.com": "bob"}
	ts := tlsAuthServer(t, func(s *Settings) {
		s.SASLAuthenticatedHeader = true
		s.Policy = testPolicy(t, func(c *policy.Config) {
			c.SenderLoginMaps = []lookup.Table{logins}
			c.SenderRestrictions = []string{"reject_sender_login_mismatch"}
		})
	})
	c := secureClient(t, ts, "127.0.0.2")
	c.cmd("AUTH PLAIN " + b64("\x00alice\x00secret"))
	c.cmd("MAIL FROM:<bob@example.com>")
	if got := c.cmd("RCPT TO:<u@remote.example>"); got != "553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user alice" {
		t.Fatalf("foreign sender: %q", got)
	}
	c.cmd("RSET")
	c.cmd("MAIL FROM:<alice@example.com>")
	if got := c.cmd("RCPT TO:<u@remote.example>"); got != "250 2.1.5 Ok" {
		t.Fatalf("own sender: %q", got)
	}
	c.cmd("DATA")
	c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("DATA: %q", got)
	}
	if body := string(ts.q.bodies[0]); !strings.Contains(body, "(No client certificate requested)\r\n\t(Authenticated sender: alice)\r\n\tby mx.example.com (yubin) with ESMTPSA id ") {
		t.Errorf("Received: %q", body)
	}
	// Without a login, a sender with an owner is refused.
	c2 := secureClient(t, ts, "127.0.0.2")
	c2.cmd("MAIL FROM:<alice@example.com>")
	if got := c2.cmd("RCPT TO:<bob@example.com>"); got != "553 5.7.1 <alice@example.com>: Sender address rejected: not logged in" {
		t.Fatalf("unauthenticated: %q", got)
	}
	ts.waitLog(t, "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user alice; from=<bob@example.com> to=<u@remote.example> proto=ESMTP helo=<client.example>")
}

// clock is a manually advanced clock for the anvil windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestConnectionCountLimit(t *testing.T) {
	nets, _ := policy.ParseNetworks([]string{"127.0.0.1/32"})
	ts := startServer(t, func(s *Settings) {
		s.Limits.ConnectionCount = 2
		s.Limits.Exceptions = nets
	})
	first := dialFrom(t, ts.addr, "127.0.0.2")
	first.reply()
	second := dialFrom(t, ts.addr, "127.0.0.2")
	second.reply()
	third := dialFrom(t, ts.addr, "127.0.0.2")
	if got := third.reply(); got != "421 4.7.0 mx.example.com Error: too many connections from 127.0.0.2" {
		t.Fatalf("third connection: %q", got)
	}
	if !third.closed() {
		t.Fatal("refused connection left open")
	}
	// Other and exempt addresses are not affected.
	for _, from := range []string{"127.0.0.3", "127.0.0.1", "127.0.0.1", "127.0.0.1"} {
		c := dialFrom(t, ts.addr, from)
		if got := c.reply(); !strings.HasPrefix(got, "220 ") {
			t.Fatalf("from %s: %q", from, got)
		}
	}
	// A closed connection frees its slot (counted at disconnect).
	first.cmd("QUIT")
	ts.waitLog(t, "disconnect from unknown[127.0.0.2] quit=1 commands=1")
	again := dialFrom(t, ts.addr, "127.0.0.2")
	if got := again.reply(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("after a disconnect: %q", got)
	}
	log := ts.log.String()
	if !strings.Contains(log, "warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.2] for service smtp") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log, "lost connection after CONNECT from unknown[127.0.0.2]") {
		t.Errorf("a refused connection is not a lost connection:\n%s", log)
	}
}

func TestRateLimits(t *testing.T) {
	clk := &clock{t: testTime}
	ts := startServer(t, func(s *Settings) {
		s.Now = clk.now
		s.Limits = Limits{ConnectionRate: 3, MessageRate: 2, RecipientRate: 3, TimeUnit: 10 * time.Second}
	})
	c := dialFrom(t, ts.addr, "127.0.0.2")
	c.reply()
	c.cmd("EHLO client.example")
	steps := []struct{ line, want string }{
		{"MAIL FROM:<a@remote.example>", "250 2.1.0 Ok"},
		{"RCPT TO:<alice@example.com>", "250 2.1.5 Ok"},
		{"RCPT TO:<bob@example.com>", "250 2.1.5 Ok"},
		{"RSET", "250 2.0.0 Ok"},
		{"MAIL FROM:<a@remote.example>", "250 2.1.0 Ok"},
		{"RCPT TO:<alice@example.com>", "250 2.1.5 Ok"},
		{"RCPT TO:<bob@example.com>", "450 4.7.1 Error: too many recipients from 127.0.0.2"},
		{"RSET", "250 2.0.0 Ok"},
		{"MAIL FROM:<a@remote.example>", "450 4.7.1 Error: too much mail from 127.0.0.2"},
	}
	for _, s := range steps {
		if got := c.cmd(s.line); got != s.want {
			t.Fatalf("%s: %q, want %q", s.line, got, s.want)
		}
	}
	// Connections: this is the 1st; the 2nd and 3rd pass, the 4th not.
	for i := 2; i <= 4; i++ {
		got := dialFrom(t, ts.addr, "127.0.0.2").reply()
		if ok := strings.HasPrefix(got, "220 "); ok != (i <= 3) {
			t.Fatalf("connection %d: %q", i, got)
		}
	}
	// A new time unit starts every rate at zero.
	clk.advance(10 * time.Second)
	if got := dialFrom(t, ts.addr, "127.0.0.2").reply(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("next unit connection: %q", got)
	}
	for _, s := range steps[:3] {
		if got := c.cmd(s.line); got != s.want {
			t.Fatalf("next unit %s: %q, want %q", s.line, got, s.want)
		}
	}
	log := ts.waitLog(t, "warning: Connection rate limit exceeded: 4 from unknown[127.0.0.2] for service smtp")
	for _, want := range []string{
		"warning: Recipient address rate limit exceeded: 4 from unknown[127.0.0.2] for service smtp",
		"warning: Message delivery request rate limit exceeded: 3 from unknown[127.0.0.2] for service smtp",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// raiseFileLimit makes room for n more descriptors, or skips.
func raiseFileLimit(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// 2,000 idle clients hold their connections; the heap must stay small
// and a new client must still be served at once.
func TestManyIdleConnectionsBoundedMemory(t *testing.T) {
	const idle = 2000
	const heapBound = 200 << 20
	raiseFileLimit(t, 2*idle+256)
	ts := startServer(t, func(s *Settings) { s.Limits.ConnectionCount = idle + 10 })
	conns := make([]net.Conn, 0, idle)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	buf := make([]byte, 512)
	for i := 0; i < idle; i++ {
		// Spread over a few loopback addresses, as different clients.
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%200))}}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// Read the greeting: the server has set the connection up fully.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "220 ") {
			t.Fatalf("connection %d greeting: %q %v", i, buf[:n], err)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d idle connections: heap in use %d KiB, goroutines %d", idle, ms.HeapInuse>>10, runtime.NumGoroutine())
	if ms.HeapInuse > heapBound {
		t.Fatalf("heap in use %d bytes with %d idle connections, bound %d", ms.HeapInuse, idle, heapBound)
	}
	start := time.Now()
	c := dialFrom(t, ts.addr, "127.0.0.2")
	if got := c.reply(); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("new client: %q", got)
	}
	c.cmd("EHLO client.example")
	c.cmd("MAIL FROM:<a@remote.example>")
	c.cmd("RCPT TO:<alice@example.com>")
	c.cmd("DATA")
	c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("new client DATA: %q", got)
	}
	t.Logf("new client served in %v", time.Since(start))
	if n := ts.srv.anvil.Clients(); n < 200 {
		t.Errorf("anvil tracks %d clients, want the 200 idle addresses", n)
	}
}
