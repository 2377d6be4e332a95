package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/yubin-mta/yubin/internal/peertest"
)

// captureSink is a minimal SMTP server that accepts every message and
// hands its content to the test (so the Received: header yubin wrote can
// be read after relaying).
func captureSink(t *testing.T) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	msgs := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveCapture(c, msgs)
		}
	}()
	return l.Addr().String(), msgs
}

func serveCapture(c net.Conn, msgs chan<- string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 sink.test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			tp.PrintfLine("250 sink.test")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			body, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			select {
			case msgs <- string(body):
			default:
			}
			tp.PrintfLine("250 2.0.0 Ok: captured")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("250 2.0.0 Ok")
		}
	}
}

func swaksRun(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := exec.Command(needTool(t, "swaks"), args...).CombinedOutput()
	return string(out)
}

func bcryptLine(t *testing.T, user, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -B writes $2y$; both spellings must work.
	return user + ":$2y$" + string(h[4:]) + "\n"
}

// submissionNode runs a node whose master.cf has a submission service
// with the given extra -o options on its own port; mail leaves through a
// capture sink. It returns the node and the submission address.
func submissionNode(t *testing.T, sinkAddr, options string) (*node, string) {
	t.Helper()
	certDir := t.TempDir()
	cert, key := writeCert(t, certDir)
	n := newNode(t, fmt.Sprintf("relayhost = [%s]:%s\nsmtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_security_level = may\n",
		strings.Split(sinkAddr, ":")[0], strings.Split(sinkAddr, ":")[1], cert, key), "")
	sub := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	master := n.masterC + sub + " inet n - n - - smtpd\n" +
		"  -o smtpd_tls_security_level=encrypt\n" +
		"  -o smtpd_sasl_auth_enable=yes\n" +
		"  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n" + options
	if err := os.WriteFile(filepath.Join(n.Dir, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	return n, sub
}

func TestSubmissionAuthPasswdFile(t *testing.T) {
	needTool(t, "swaks")
	sinkAddr, msgs := captureSink(t)
	dir := t.TempDir()
	passwd := filepath.Join(dir, "sasl_passwd")
	os.WriteFile(passwd, []byte("# SMTP AUTH users\n"+bcryptLine(t, "alice", "s3cret pass")+bcryptLine(t, "bob", "hunter2")), 0o600)
	logins := filepath.Join(dir, "sender_login")
	os.WriteFile(logins, []byte("alice@yubin.test alice\nbob@yubin.test bob\n"), 0o644)
	n, sub := submissionNode(t, sinkAddr,
		"  -o smtpd_sasl_type=passwd\n  -o smtpd_sasl_path="+passwd+"\n"+
			"  -o smtpd_sasl_authenticated_header=yes\n"+
			"  -o smtpd_sender_login_maps=texthash:"+logins+"\n"+
			"  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n"+
			"  -o smtpd_client_auth_rate_limit=3\n")
	n.start()
	host, port, _ := strings.Cut(sub, ":")
	base := []string{"--server", host, "--port", port, "--local-interface", "127.0.0.2", "--helo", "client.yubin.test"}

	// Plaintext: no AUTH offered, no mail taken (smtpd_tls_security_level = encrypt).
	out := swaksRun(t, append(base, "--from", "alice@yubin.test", "--to", "x@remote.example")...)
	if strings.Contains(out, "250-AUTH") || !strings.Contains(out, "530 5.7.0 Must issue a STARTTLS command first") {
		t.Fatalf("plaintext submission:\n%s", out)
	}
	// PLAIN and LOGIN over STARTTLS relay for the logged-in user.
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		out = swaksRun(t, append(base, "--tls", "--auth", mech, "--auth-user", "alice", "--auth-password", "s3cret pass",
			"--from", "alice@yubin.test", "--to", "friend@remote.example", "--header", "Subject: via "+mech)...)
		if !strings.Contains(out, "250-AUTH PLAIN LOGIN") || !strings.Contains(out, "235 2.7.0 Authentication successful") || !strings.Contains(out, "queued as") {
			t.Fatalf("AUTH %s:\n%s", mech, out)
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case m := <-msgs:
			re := regexp.MustCompile(`(?s)Received: from client\.yubin\.test \(unknown \[127\.0\.0\.2\]\)\r?\n\t\(using TLSv1\.[23] with cipher [^\n]+\n\t\(No client certificate requested\)\r?\n\t\(Authenticated sender: alice\)\r?\n\tby mx\.yubin\.test \(yubin\) with ESMTPSA id `)
			if !re.MatchString(m) {
				t.Fatalf("Received: header of the relayed message:\n%s", m)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("authenticated message was not relayed")
		}
	}
	// A logged-in user cannot use someone else's address.
	out = swaksRun(t, append(base, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret pass",
		"--from", "bob@yubin.test", "--to", "friend@remote.example")...)
	if !strings.Contains(out, "553 5.7.1 <bob@yubin.test>: Sender address rejected: not owned by user alice") {
		t.Fatalf("sender login mismatch:\n%s", out)
	}
	// Without AUTH the submission service relays nothing.
	out = swaksRun(t, append(base, "--tls", "--from", "carol@remote.example", "--to", "friend@remote.example")...)
	if strings.Contains(out, "queued as") || !strings.Contains(out, "554 5.7.1 <friend@remote.example>: Recipient address rejected: Access denied") {
		t.Fatalf("unauthenticated relay:\n%s", out)
	}
	// Three wrong passwords, then AUTH is refused with 421 even with the
	// right one, for that client address.
	for i := 0; i < 3; i++ {
		out = swaksRun(t, append(base, "--tls", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password", fmt.Sprintf("guess%d", i),
			"--from", "bob@yubin.test", "--to", "friend@remote.example")...)
		if !strings.Contains(out, "535 5.7.8 Error: authentication failed: authentication failure") {
			t.Fatalf("wrong password %d:\n%s", i, out)
		}
	}
	out = swaksRun(t, append(base, "--tls", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password", "hunter2",
		"--from", "bob@yubin.test", "--to", "friend@remote.example")...)
	if !strings.Contains(out, "421 4.7.0 mx.yubin.test Error: too many failed AUTH attempts from 127.0.0.2") {
		t.Fatalf("after three failures:\n%s", out)
	}
	log := n.maillog()
	for _, re := range []string{
		`smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=alice`,
		`smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.2\], sasl_method=LOGIN, sasl_username=alice`,
		`warning: unknown\[127\.0\.0\.2\]: SASL LOGIN authentication failed: authentication failure`,
		`warning: AUTH failure rate limit exceeded: 3 from unknown\[127\.0\.0\.2\] for service 127\.0\.0\.1:\d+`,
		`NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 553 5\.7\.1 <bob@yubin\.test>: Sender address rejected: not owned by user alice;`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("maillog lacks %s", re)
		}
	}
	if strings.Contains(log, "s3cret") || strings.Contains(log, "hunter2") {
		t.Errorf("a password reached the mail log")
	}
}

func TestSubmissionAuthDovecot(t *testing.T) {
	needTool(t, "swaks")
	socket := peertest.StartDovecotAuth(t, "dave:{PLAIN}dovecot-pw\n")
	sinkAddr, msgs := captureSink(t)
	n, sub := submissionNode(t, sinkAddr, "  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path="+socket+"\n")
	n.start()
	host, port, _ := strings.Cut(sub, ":")
	base := []string{"--server", host, "--port", port, "--local-interface", "127.0.0.2", "--tls", "--from", "dave@yubin.test", "--to", "friend@remote.example"}
	out := swaksRun(t, append(base, "--auth", "LOGIN", "--auth-user", "dave", "--auth-password", "wrong")...)
	if !strings.Contains(out, "535 5.7.8 Error: authentication failed") {
		t.Fatalf("wrong password via dovecot:\n%s", out)
	}
	out = swaksRun(t, append(base, "--auth", "PLAIN", "--auth-user", "dave", "--auth-password", "dovecot-pw")...)
	if !strings.Contains(out, "235 2.7.0 Authentication successful") || !strings.Contains(out, "queued as") {
		t.Fatalf("dovecot AUTH:\n%s", out)
	}
	select {
	case m := <-msgs:
		if !strings.Contains(m, "with ESMTPSA id ") || strings.Contains(m, "Authenticated sender") {
			t.Fatalf("Received: (smtpd_sasl_authenticated_header = no):\n%s", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("message not relayed")
	}
	if !strings.Contains(n.maillog(), "sasl_method=PLAIN, sasl_username=dave") {
		t.Errorf("maillog lacks the SASL client line")
	}
}

func TestPlaintextAuthOnlyWhenExplicit(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "sasl_passwd")
	os.WriteFile(passwd, []byte(bcryptLine(t, "alice", "pw")), 0o600)
	for _, explicit := range []bool{false, true} {
		extra := fmt.Sprintf("smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = passwd\nsmtpd_sasl_path = %s\n", passwd)
		if explicit {
			extra += "smtpd_tls_auth_only = no\n"
		}
		n := deferringNode(t, extra)
		n.start()
		host, port, _ := strings.Cut(n.SMTP, ":")
		out := swaksRun(t, "--server", host, "--port", port, "--local-interface", "127.0.0.2", "--quit-after", "EHLO")
		if offered := strings.Contains(out, "250-AUTH PLAIN LOGIN"); offered != explicit {
			t.Errorf("smtpd_tls_auth_only explicit=%v: AUTH offered=%v\n%s", explicit, offered, out)
		}
		n.kill()
	}
}

func TestAnvilLimits(t *testing.T) {
	const unit = 3 * time.Second
	n := deferringNode(t, fmt.Sprintf("smtpd_client_connection_count_limit = 2\nsmtpd_client_message_rate_limit = 2\nanvil_rate_time_unit = %ds\n", int(unit.Seconds())))
	n.start()
	dial := func(from string) (net.Conn, *bufio.Reader, string) {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", n.SMTP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		return c, r, strings.TrimSpace(line)
	}
	_, _, g1 := dial("127.0.0.2")
	_, _, g2 := dial("127.0.0.2")
	_, _, g3 := dial("127.0.0.2")
	if !strings.HasPrefix(g1, "220 ") || !strings.HasPrefix(g2, "220 ") || g3 != "421 4.7.0 mx.yubin.test Error: too many connections from 127.0.0.2" {
		t.Fatalf("greetings: %q %q %q", g1, g2, g3)
	}
	// mynetworks is exempt (smtpd_client_event_limit_exceptions default).
	for i := 0; i < 3; i++ {
		if _, _, g := dial("127.0.0.1"); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("mynetworks client %d: %q", i, g)
		}
	}
	// Message rate: the third MAIL within the time unit is deferred; the
	// next time unit starts from zero.
	send := func() sendResult {
		t.Helper()
		r, err := smtpSend(n.SMTP, "127.0.0.3", "a@remote.example", []string{"root@mx.yubin.test"}, "Subject: rate\r\n\r\nx\r\n")
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		return r
	}
	windowStart := time.Now()
	for i := 0; i < 2; i++ {
		if r := send(); r.queueID() == "" {
			t.Fatalf("message %d: %+v", i+1, r)
		}
	}
	if r := send(); r.Code != 450 || r.Message != "4.7.1 Error: too much mail from 127.0.0.3" {
		t.Fatalf("third message: %+v", r)
	}
	if time.Since(windowStart) > unit {
		t.Fatalf("three messages took longer than anvil_rate_time_unit (%v); the window check above proved nothing", unit)
	}
	time.Sleep(time.Until(windowStart.Add(unit + 200*time.Millisecond)))
	if r := send(); r.queueID() == "" {
		t.Fatalf("first message of the next time unit: %+v", r)
	}
	log := n.maillog()
	for _, want := range []string{
		"warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.2] for service ",
		"warning: Message delivery request rate limit exceeded: 3 from unknown[127.0.0.3] for service ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q", want)
		}
	}
}

// nmap's smtp-open-relay script tries sixteen relay tricks from an
// untrusted address; every one must fail and nothing may be queued.
func TestNmapOpenRelay(t *testing.T) {
	nmap := needTool(t, "nmap")
	// The scanner connects from 127.0.0.1, which must not be trusted.
	// smtpd_error_sleep_time = 0: the tarpit would only slow the test down.
	n := deferringNode(t, "mynetworks = 127.0.0.3/32\nsmtpd_error_sleep_time = 0\n")
	n.start()
	host, port, _ := strings.Cut(n.SMTP, ":")
	// The ground truth is the server's own log: every probe reached RCPT and
	// was refused there, and nothing was queued. nmap's verdict is checked
	// too, but on a loaded machine its script can read a stale reply (the
	// 250 to MAIL FROM as the answer to RCPT) or print nothing; such a scan
	// is repeated, at most three times.
	const verdict = "Server doesn't seem to be an open relay, all tests failed"
	refusedAll := regexp.MustCompile(`disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=16 rcpt=0/16 `)
	accepted := regexp.MustCompile(`disconnect from localhost\[127\.0\.0\.1\] .*rcpt=[1-9]`)
	var out []byte
	for try := 0; try < 3; try++ {
		var err error
		out, err = exec.Command(nmap, "-Pn", "-sT", "-n", "-p", port, "--script", "+smtp-open-relay", // + runs it on a port other than 25/465/587
			"--script-args", "smtp-open-relay.domain=relay-victim.example,smtp-open-relay.ip="+host, host).CombinedOutput()
		if err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
		if accepted.MatchString(n.maillog()) {
			t.Fatalf("a relay probe was accepted at RCPT:\n%s\n%s", out, n.maillog())
		}
		if strings.Contains(string(out), verdict) {
			break
		}
	}
	if !strings.Contains(string(out), verdict) {
		t.Fatalf("nmap smtp-open-relay:\n%s\nmaillog:\n%s", out, n.maillog())
	}
	if q := n.queue(); len(q) != 0 {
		t.Fatalf("relay probes queued: %+v", q)
	}
	if !refusedAll.MatchString(n.maillog()) {
		t.Errorf("the sixteen probes did not all fail at RCPT:\n%s", n.maillog())
	}
}

// Security settings that cannot work stop `yubin serve` with a clear
// message instead of running without the protection.
func TestSecurityConfigErrors(t *testing.T) {
	tests := []struct{ main, want string }{
		{"smtpd_sasl_auth_enable = yes\n", "smtpd_sasl_type = cyrus is not supported"},
		{"smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = passwd\n", "smtpd_sasl_type = passwd needs smtpd_sasl_path"},
		{"smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = passwd\nsmtpd_sasl_path = /nonexistent/sasl_passwd\n", "/nonexistent/sasl_passwd"},
		{"smtpd_tls_security_level = encrypt\n", "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file"},
		{"smtpd_sender_restrictions = reject_sender_login_mismatch\n", "reject_sender_login_mismatch needs smtpd_sender_login_maps"},
		{"smtpd_client_event_limit_exceptions = client.example.com\n", "smtpd_client_event_limit_exceptions"},
	}
	for _, tt := range tests {
		n := newNode(t, tt.main, "")
		_, stderr, err := n.tool("", "serve", "-c", n.Dir)
		if err == nil || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: %v, stderr %q; want %q", tt.main, err, stderr, tt.want)
		}
	}
}
