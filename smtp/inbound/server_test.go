package inbound

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/smtp/policy"
)

func TestFullSession(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	steps := []struct{ send, want string }{
		{"", "220 mx.example.com ESMTP yubin"},
		{"EHLO client.example", "250-mx.example.com\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250 SMTPUTF8"},
		{"MAIL FROM:<sender@remote.example> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc123", "250 2.1.0 Ok"},
		{"RCPT TO:<alice@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.com", "250 2.1.5 Ok"},
		{"DATA", "354 End data with <CR><LF>.<CR><LF>"},
		{"Subject: hi\r\nMessage-ID: <m1@remote.example>\r\n\r\n..dot\r\nbody\r\n.", "250 2.0.0 Ok: queued as 4F2A81C0D4A"},
		{"QUIT", "221 2.0.0 Bye"},
	}
	for _, s := range steps {
		if s.send != "" {
			c.send(s.send + "\r\n")
		}
		if got := c.reply(); got != s.want {
			t.Fatalf("after %q: got\n%s\nwant\n%s", s.send, got, s.want)
		}
	}
	if !c.closed() {
		t.Error("connection not closed after QUIT")
	}
	if ts.q.count() != 1 {
		t.Fatalf("%d messages queued", ts.q.count())
	}
	m, body := ts.q.msgs[0], string(ts.q.bodies[0])
	wantBody := "Received: from client.example (localhost [127.0.0.1])\r\n" +
		"\tby mx.example.com (yubin) with ESMTP id 4F2A81C0D4A\r\n" +
		"\tfor <alice@example.com>; Mon,  3 Nov 2025 05:17:55 +0900 (JST)\r\n" +
		"Subject: hi\r\nMessage-ID: <m1@remote.example>\r\nDate: Mon,  3 Nov 2025 05:17:55 +0900 (JST)\r\n\r\n.dot\r\nbody\r\n"
	if body != wantBody {
		t.Errorf("body:\n%q\nwant\n%q", body, wantBody)
	}
	if m.Sender != "sender@remote.example" || len(m.Recipients) != 1 || m.Recipients[0].Addr != "alice@example.com" ||
		m.Recipients[0].Notify != "SUCCESS,FAILURE" || m.Recipients[0].ORCPT != "rfc822;alice@example.com" ||
		m.RET != "HDRS" || m.ENVID != "abc123" || m.BodyType != "8BITMIME" || m.Size != int64(len(body)) ||
		m.ClientName != "localhost" || m.ClientAddr != "127.0.0.1" || m.Helo != "client.example" ||
		m.Protocol != "ESMTP" || m.MessageID != "<m1@remote.example>" || m.Origin != "smtpd" {
		t.Errorf("message: %+v", m)
	}
	log := ts.waitLog(t, "disconnect from")
	for _, want := range []string{
		"mx postfix/smtpd[",
		"]: connect from localhost[127.0.0.1]\n",
		"]: 4F2A81C0D4A: client=localhost[127.0.0.1]\n",
		"postfix/cleanup[",
		"]: 4F2A81C0D4A: message-id=<m1@remote.example>\n",
		"postfix/qmgr[",
		"]: 4F2A81C0D4A: from=<sender@remote.example>, size=" + strconv.Itoa(len(body)) + ", nrcpt=1 (queue active)\n",
		"]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestReplies(t *testing.T) {
	long := strings.Repeat("x", 65)
	cases := []struct {
		name     string
		settings func(*Settings)
		from     string // client source address
		script   []string
		want     []string // replies to script, in order
	}{
		{name: "need MAIL", script: []string{"EHLO c.example", "RCPT TO:<alice@example.com>"},
			want: []string{"", "503 5.5.1 Error: need MAIL command"}},
		{name: "need RCPT", script: []string{"EHLO c.example", "DATA"}, want: []string{"", "503 5.5.1 Error: need RCPT command"}},
		{name: "no valid recipients", script: []string{"EHLO c.example", "MAIL FROM:<>", "RCPT TO:<nobody@example.com>", "DATA"},
			want: []string{"", "250 2.1.0 Ok", "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table", "554 5.5.1 Error: no valid recipients"}},
		{name: "nested MAIL", script: []string{"EHLO c.example", "MAIL FROM:<>", "MAIL FROM:<>"},
			want: []string{"", "250 2.1.0 Ok", "503 5.5.1 Error: nested MAIL command"}},
		{name: "unknown command", script: []string{"EHLO c.example", "XYZZY", "HELP", "EXPN root"},
			want: []string{"", "502 5.5.2 Error: command not recognized", "502 5.5.2 Error: command not recognized", "502 5.5.2 Error: command not recognized"}},
		{name: "HELO reply", script: []string{"HELO c.example", "HELO"}, want: []string{"250 mx.example.com", "501 Syntax: HELO hostname"}},
		{name: "MAIL without HELO allowed", script: []string{"MAIL FROM:<>"}, want: []string{"250 2.1.0 Ok"}},
		{name: "helo required", settings: func(s *Settings) { s.HeloRequired = true }, script: []string{"MAIL FROM:<>"},
			want: []string{"503 5.5.1 Error: send HELO/EHLO first"}},
		{name: "syntax", script: []string{"EHLO c", "MAIL TO:<x@y.example>", "MAIL FROM:<a@b@c.example>", "MAIL FROM:<>", "RCPT <x@y>", "RCPT TO:<>", "DATA x", "RSET x", "NOOP", "RSET"},
			want: []string{"", "501 5.5.4 Syntax: MAIL FROM:<address>", "501 5.1.7 Bad sender address syntax", "250 2.1.0 Ok",
				"501 5.5.4 Syntax: RCPT TO:<address>", "501 5.1.3 Bad recipient address syntax", "501 5.5.4 Syntax: DATA", "501 5.5.4 Syntax: RSET", "250 2.0.0 Ok", "250 2.0.0 Ok"}},
		{name: "strict recipient addresses", script: []string{"EHLO c", "MAIL FROM:<>",
			"RCPT TO:<@mx.example.com:alice@example.com>", "RCPT TO:<alice@remote.example@example.com>",
			"RCPT TO:<" + long + "@example.com>", "RCPT TO:alice@example.com", "RCPT TO:<alice@example.com> FOO=1", "RCPT TO:<\"a b\"@example.com>"},
			want: []string{"", "250 2.1.0 Ok", "501 5.1.3 Bad recipient address syntax", "501 5.1.3 Bad recipient address syntax",
				"501 5.1.3 Bad recipient address syntax", "501 5.1.3 Bad recipient address syntax", "555 5.5.4 Unsupported option: FOO", "250 2.1.5 Ok"}},
		{name: "size limit at MAIL", script: []string{"EHLO c", "MAIL FROM:<> SIZE=99999999999", "MAIL FROM:<> FOO=BAR"},
			want: []string{"", "552 5.3.4 Message size exceeds fixed limit", "555 5.5.4 Unsupported option: FOO"}},
		{name: "too many recipients", settings: func(s *Settings) { s.RecipientLimit = 2 },
			script: []string{"EHLO c", "MAIL FROM:<>", "RCPT TO:<alice@example.com>", "RCPT TO:<bob@example.com>", "RCPT TO:<alice@example.com>"},
			want:   []string{"", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "452 4.5.3 Error: too many recipients"}},
		{name: "relay denied outside mynetworks", from: "127.0.0.2", script: []string{"EHLO c", "MAIL FROM:<s@x.example>", "RCPT TO:<u@remote.example>"},
			want: []string{"", "250 2.1.0 Ok", "450 4.7.1 <u@remote.example>: Relay access denied"}},
		{name: "relay allowed from mynetworks", script: []string{"EHLO c", "MAIL FROM:<s@x.example>", "RCPT TO:<u@remote.example>"},
			want: []string{"", "250 2.1.0 Ok", "250 2.1.5 Ok"}},
		{name: "unicode address needs SMTPUTF8", script: []string{"EHLO c", "MAIL FROM:<ユーザ@example.com>", "MAIL FROM:<ユーザ@example.com> SMTPUTF8"},
			want: []string{"", "553 5.6.7 Must declare SMTPUTF8 to send unicode address", "250 2.1.0 Ok"}},
		{name: "VRFY", script: []string{"VRFY alice@example.com", "VRFY <nobody@example.com>", "VRFY"},
			want: []string{"252 2.0.0 alice@example.com", "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table", "501 5.5.4 Syntax: VRFY address"}},
		{name: "VRFY disabled", settings: func(s *Settings) { s.DisableVRFY = true }, script: []string{"VRFY alice"},
			want: []string{"502 5.5.1 VRFY command is disabled"}},
		{name: "STARTTLS without TLS", script: []string{"STARTTLS"}, want: []string{"502 5.5.1 Error: command not implemented"}},
		{name: "AUTH without SASL", script: []string{"EHLO c", "AUTH PLAIN"}, want: []string{"", "503 5.5.1 Error: authentication not enabled"}},
		{name: "line too long", script: []string{"NOOP " + strings.Repeat("y", 3000)}, want: []string{"500 5.5.0 Error: line too long"}},
		{name: "queue file system nearly full", settings: func(s *Settings) {
			s.FreeSpace = func() (int64, error) { return 1 << 20, nil }
			s.MessageSizeLimit = 10240000
		}, script: []string{"EHLO c", "MAIL FROM:<s@x.example>"}, want: []string{"", "452 4.3.1 Insufficient system storage"}},
		{name: "enough free space", settings: func(s *Settings) {
			s.FreeSpace = func() (int64, error) { return 1 << 30, nil }
			s.QueueMinFree = 1 << 29
		}, script: []string{"EHLO c", "MAIL FROM:<s@x.example>"}, want: []string{"", "250 2.1.0 Ok"}},
		// RFC 5321 4.5.3.1.4: 512 octets with the CRLF.
		{name: "command line at the RFC limit", script: []string{"NOOP " + strings.Repeat("y", 505)}, want: []string{"250 2.0.0 Ok"}},
		{name: "command line over the RFC limit", script: []string{"NOOP " + strings.Repeat("y", 506)}, want: []string{"500 5.5.0 Error: line too long"}},
		{name: "HTTP request", script: []string{"GET / HTTP/1.0"}, want: []string{"221 2.7.0 Error: I can break rules, too. Goodbye."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.settings)
			c := dialFrom(t, ts.addr, tc.from)
			c.reply()
			for i, line := range tc.script {
				got := c.cmd(line)
				if tc.want[i] != "" && got != tc.want[i] {
					t.Errorf("%q: got %q, want %q", line, got, tc.want[i])
				}
			}
		})
	}
}

func TestRejectLog(t *testing.T) {
	ts := startServer(t, nil)
	c := dialFrom(t, ts.addr, "127.0.0.2")
	c.reply()
	c.cmd("EHLO client.example")
	c.cmd("MAIL FROM:<s@x.example>")
	if got := c.cmd("RCPT TO:<u@remote.example>"); !strings.HasPrefix(got, "450 4.7.1") {
		t.Fatalf("RCPT: %q", got)
	}
	c.cmd("QUIT")
	log := ts.waitLog(t, "disconnect from")
	for _, want := range []string{
		"connect from unknown[127.0.0.2]",
		"NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 450 4.7.1 <u@remote.example>: Relay access denied; from=<s@x.example> to=<u@remote.example> proto=ESMTP helo=<client.example>",
		"disconnect from unknown[127.0.0.2] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func sendMessage(t *testing.T, c *client, rcpts []string, data string) string {
	t.Helper()
	c.cmd("EHLO client.example")
	c.cmd("MAIL FROM:<s@remote.example>")
	for _, r := range rcpts {
		if got := c.cmd("RCPT TO:<" + r + ">"); !strings.HasPrefix(got, "250") {
			t.Fatalf("RCPT %s: %q", r, got)
		}
	}
	if got := c.cmd("DATA"); !strings.HasPrefix(got, "354") {
		t.Fatalf("DATA: %q", got)
	}
	c.send(data + "\r\n.\r\n")
	return c.reply()
}

func TestSubmitFailure(t *testing.T) {
	ts := startServer(t, nil)
	ts.q.submitErr = errors.New("raft: not leader")
	c := dial(t, ts.addr)
	c.reply()
	if got := sendMessage(t, c, []string{"alice@example.com"}, "Subject: x\r\n\r\nhi"); got != "451 4.3.0 Error: queue file write error" {
		t.Errorf("got %q", got)
	}
	ts.waitLog(t, "warning: 4F2A81C0D4A: queue file write error: raft: not leader")
}

func TestSubmitPanicKeepsServing(t *testing.T) {
	ts := startServer(t, nil)
	ts.q.panicOnSubmit = true
	c := dial(t, ts.addr)
	c.reply()
	if got := sendMessage(t, c, []string{"alice@example.com"}, "x"); got != "421 4.3.0 mx.example.com Error: internal error" {
		t.Errorf("got %q", got)
	}
	if !c.closed() {
		t.Error("session not closed after internal error")
	}
	ts.q.panicOnSubmit = false
	c2 := dial(t, ts.addr)
	c2.reply()
	if got := sendMessage(t, c2, []string{"alice@example.com"}, "x"); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Errorf("after panic: %q", got)
	}
}

func TestMultipleRecipientsAndHeaders(t *testing.T) {
	ts := startServer(t, nil)
	c := dialFrom(t, ts.addr, "127.0.0.2") // not local: no Message-Id/Date added
	c.reply()
	if got := sendMessage(t, c, []string{"alice@example.com", "\"a b\"@example.com"}, "Subject: x\r\n\r\nhi"); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("got %q", got)
	}
	body := string(ts.q.bodies[0])
	want := "Received: from client.example (unknown [127.0.0.2])\r\n\tby mx.example.com (yubin) with ESMTP id 4F2A81C0D4A;\r\n\tMon,  3 Nov 2025 05:17:55 +0900 (JST)\r\nSubject: x\r\n\r\nhi\r\n"
	if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if r := ts.q.msgs[0].Recipients; len(r) != 2 || r[1].Addr != `"a b"@example.com` {
		t.Errorf("recipients %+v", r)
	}
}

func TestMessageIDAddedForLocalClient(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.reply()
	sendMessage(t, c, []string{"alice@example.com"}, "Subject: x\r\n\r\nhi")
	body := string(ts.q.bodies[0])
	if !strings.Contains(body, "Subject: x\r\nMessage-Id: <20251102201755.4F2A81C0D4A@mx.example.com>\r\nDate: Mon,  3 Nov 2025 05:17:55 +0900 (JST)\r\n\r\nhi\r\n") {
		t.Errorf("body %q", body)
	}
	ts.waitLog(t, "4F2A81C0D4A: message-id=<20251102201755.4F2A81C0D4A@mx.example.com>")
}

func TestDataLimits(t *testing.T) {
	ts := startServer(t, func(s *Settings) {
		s.MessageSizeLimit = 300
		s.HopcountLimit = 3
		s.HeaderSizeLimit = 100
	})
	c := dial(t, ts.addr)
	c.reply()
	if got := sendMessage(t, c, []string{"alice@example.com"}, strings.Repeat("line of text\r\n", 40)); got != "552 5.3.4 Message size exceeds fixed limit" {
		t.Errorf("size: %q", got)
	}
	if got := sendMessage(t, c, []string{"alice@example.com"}, "Received: a\r\nReceived: b\r\nDelivered-To: c\r\n\r\nx"); got != "554 5.4.6 Too many hops" {
		t.Errorf("hops: %q", got)
	}
	if got := sendMessage(t, c, []string{"alice@example.com"}, "X-Long: "+strings.Repeat("h", 120)+"\r\n\r\nx"); got != "552 5.3.4 Message header size exceeds fixed limit" {
		t.Errorf("header size: %q", got)
	}
	if got := sendMessage(t, c, []string{"alice@example.com"}, "Received: a\r\n\r\nfine"); !strings.HasPrefix(got, "250 ") {
		t.Errorf("session unusable after rejects: %q", got)
	}
	if ts.q.count() != 1 {
		t.Errorf("%d messages queued, want 1", ts.q.count())
	}
}

func TestHoldAndDiscard(t *testing.T) {
	ts := startServer(t, func(s *Settings) {
		s.Policy = testPolicy(t, func(c *policy.Config) {
			c.RecipientRestrictions = []string{"check_recipient_access hash:/etc/postfix/recipient_access"}
		})
	})
	c := dial(t, ts.addr)
	c.reply()
	if got := sendMessage(t, c, []string{"held@example.com"}, "x"); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as 4F2A81C0D4A") {
		t.Fatalf("hold: %q", got)
	}
	if m := ts.q.msgs[0]; !m.Hold || m.State != "hold" {
		t.Errorf("held message: %+v", m)
	}
	ts.waitLog(t, "4F2A81C0D4A: hold: RCPT from localhost[127.0.0.1]: <held@example.com>: Recipient address triggers HOLD action; from=<s@remote.example> to=<held@example.com> proto=ESMTP helo=<client.example>")
	if got := sendMessage(t, c, []string{"alice@example.com"}, "x"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("second: %q", got)
	}
	c.cmd("RSET")
	c.cmd("MAIL FROM:<s@remote.example>")
	c.cmd("RCPT TO:<alice@example.com>")
	c.cmd("RCPT TO:<gone@example.com>")
	c.cmd("DATA")
	c.send("x\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("discard: %q", got)
	}
	if ts.q.count() != 2 {
		t.Errorf("%d messages queued; the discarded one must not be", ts.q.count())
	}
}

func TestErrorLimits(t *testing.T) {
	ts := startServer(t, func(s *Settings) {
		s.HardErrorLimit = 3
		s.SoftErrorLimit = 2
		s.ErrorSleepTime = 100 * time.Millisecond
	})
	c := dial(t, ts.addr)
	c.reply()
	c.cmd("BOGUS1")
	start := time.Now()
	c.cmd("BOGUS2") // the second error reaches the soft limit: this reply is delayed
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("no tarpit delay after soft limit: %v", d)
	}
	c.cmd("BOGUS3")
	if got := c.cmd("NOOP"); got != "421 4.7.0 mx.example.com Error: too many errors" {
		t.Errorf("got %q", got)
	}
	if !c.closed() {
		t.Error("not closed")
	}
	ts.waitLog(t, "too many errors after NOOP from localhost[127.0.0.1]")
}

func TestJunkCommandLimit(t *testing.T) {
	ts := startServer(t, func(s *Settings) { s.JunkCommandLimit = 2 })
	c := dial(t, ts.addr)
	c.reply()
	c.cmd("NOOP")
	c.cmd("NOOP")
	if got := c.cmd("NOOP"); got != "421 4.7.0 mx.example.com Error: too many errors" {
		t.Errorf("got %q", got)
	}
}

func TestShutdownWaitsAndForces(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.reply()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with an idle client: %v", err)
	}
	if !c.closed() {
		t.Error("client not disconnected by forced shutdown")
	}
}

// RFC 5321 4.5.3.1.6: a text line of at most 1000 octets with its CRLF is
// accepted; a longer one refuses the message with 5xx and queues nothing.
func TestTextLineLimit(t *testing.T) {
	for _, tc := range []struct {
		n      int
		queued bool
	}{{998, true}, {999, false}} {
		ts := startServer(t, nil)
		c := dial(t, ts.addr)
		c.reply()
		c.cmd("EHLO c")
		c.cmd("MAIL FROM:<s@x.example>")
		c.cmd("RCPT TO:<alice@example.com>")
		if r := c.cmd("DATA"); !strings.HasPrefix(r, "354") {
			t.Fatalf("DATA: %q", r)
		}
		// What follows a too long line must never run as a command.
		c.send("Subject: long\r\n\r\n" + strings.Repeat("z", tc.n) + "\r\nRSET\r\nMAIL FROM:<x@y.example>\r\n.\r\n")
		r := c.reply()
		if !tc.queued {
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if extra, err := c.r.ReadString('\n'); err == nil {
				t.Fatalf("line of %d octets: the server answered %q after %q", tc.n, extra, r)
			}
		}
		if tc.queued != strings.HasPrefix(r, "250") || (!tc.queued && !strings.HasPrefix(r, "5")) {
			t.Fatalf("line of %d octets: %q", tc.n, r)
		}
		if got := ts.q.count(); got != map[bool]int{true: 1, false: 0}[tc.queued] {
			t.Fatalf("line of %d octets: %d queued", tc.n, got)
		}
	}
}
