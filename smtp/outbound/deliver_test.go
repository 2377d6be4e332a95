package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/dnsres"
)

func newResolver(t *testing.T, server string) *dnsres.Resolver {
	t.Helper()
	r, err := dnsres.New([]string{server}, time.Second, dnsres.WithProtocols(dnsres.ProtocolsIPv4), dnsres.WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeliverStageReplies(t *testing.T) {
	const rejected = "550 5.1.1 <bad@x.test>: Recipient address rejected: User unknown"
	tests := []struct {
		name   string
		script func(s *fakeServer)
		want   []Result // Addr is ignored
	}{
		{
			name: "per-recipient RCPT results",
			script: func(s *fakeServer) {
				s.rcptReply = func(a string) string {
					switch a {
					case "bad@x.test":
						return rejected
					case "later@x.test":
						return "450 4.2.0 <later@x.test>: Mailbox busy"
					}
					return "250 2.1.5 Ok"
				}
			},
			want: []Result{
				{Status: Sent, DSN: "2.0.0", Reply: "250 2.0.0 Ok: queued as ABC"},
				{Status: Bounced, DSN: "5.1.1", Reply: "host 127.0.0.1[127.0.0.1] said: " + rejected + " (in reply to RCPT TO command)"},
				{Status: Deferred, DSN: "4.2.0", Reply: "host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <later@x.test>: Mailbox busy (in reply to RCPT TO command)"},
			},
		},
		{
			name:   "MAIL 5xx bounces all",
			script: func(s *fakeServer) { s.mailReply = "553 5.7.1 <s@y.test>: Sender address rejected" },
			want: repeat(3, Result{Status: Bounced, DSN: "5.7.1",
				Reply: "host 127.0.0.1[127.0.0.1] said: 553 5.7.1 <s@y.test>: Sender address rejected (in reply to MAIL FROM command)"}),
		},
		{
			name:   "MAIL 4xx defers all",
			script: func(s *fakeServer) { s.mailReply = "451 4.3.0 Try later" },
			want: repeat(3, Result{Status: Deferred, DSN: "4.3.0",
				Reply: "host 127.0.0.1[127.0.0.1] said: 451 4.3.0 Try later (in reply to MAIL FROM command)"}),
		},
		{
			name:   "DATA 5xx without enhanced code",
			script: func(s *fakeServer) { s.dataReply = "554 No valid recipients" },
			want: repeat(3, Result{Status: Bounced, DSN: "5.0.0",
				Reply: "host 127.0.0.1[127.0.0.1] said: 554 No valid recipients (in reply to DATA command)"}),
		},
		{
			name:   "end of DATA multi-line 5xx",
			script: func(s *fakeServer) { s.dotReply = "552-5.3.4 Message too big\n552 5.3.4 for this system" },
			want: repeat(3, Result{Status: Bounced, DSN: "5.3.4",
				Reply: "host 127.0.0.1[127.0.0.1] said: 552-5.3.4 Message too big 552 5.3.4 for this system (in reply to end of DATA command)"}),
		},
		{
			name:   "5xx greeting is deferred (smtp_skip_5xx_greeting)",
			script: func(s *fakeServer) { s.greeting = "554 5.7.1 go away" },
			want: repeat(3, Result{Status: Deferred, DSN: "4.7.1",
				Reply: "host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away"}),
		},
		{
			name:   "421 greeting",
			script: func(s *fakeServer) { s.greeting = "421 4.3.2 busy" },
			want: repeat(3, Result{Status: Deferred, DSN: "4.3.2",
				Reply: "host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 busy"}),
		},
		{
			name: "RCPT 421 drops the session",
			script: func(s *fakeServer) {
				s.rcptReply = func(string) string { return "421 4.4.2 shutting down" }
			},
			want: repeat(3, Result{Status: Deferred, DSN: "4.4.2",
				Reply: "host 127.0.0.1[127.0.0.1] said: 421 4.4.2 shutting down (in reply to RCPT TO command)"}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, "127.0.0.1", tc.script)
			c := mustClient(t, Options{})
			out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
				Sender: "s@y.test", Recipients: rcpts("ok@x.test", "bad@x.test", "later@x.test"),
				Body: body("Subject: t\n\nhi\n"), Size: 16})
			if len(out.Results) != 3 {
				t.Fatalf("got %d results", len(out.Results))
			}
			for i, w := range tc.want {
				checkResult(t, out.Results[i], w.Status, w.DSN, w.Reply)
			}
		})
	}
}

func repeat(n int, r Result) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func TestDeliverMXFirstRefusedSecondAccepts(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	dnsAddr, _ := startDNS(t,
		"example.test. 300 IN MX 10 mx1.example.test.",
		"example.test. 300 IN MX 20 mx2.example.test.",
		"mx1.example.test. 300 IN A 127.0.0.2", // nothing listens there on s.port
		"mx2.example.test. 300 IN A 127.0.0.1",
	)
	c := mustClient(t, Options{Resolver: newResolver(t, dnsAddr), DefaultPort: s.port})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: "example.test",
		Sender: "s@y.test", Recipients: rcpts("u@example.test"), Body: body("hi\n")})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	wantRelay := fmt.Sprintf("mx2.example.test[127.0.0.1]:%d", s.port)
	if out.Relay != wantRelay || out.Results[0].Relay != wantRelay {
		t.Errorf("relay %q / %q, want %q", out.Relay, out.Results[0].Relay, wantRelay)
	}
}

func TestDeliverSoftRcptTriesNextMX(t *testing.T) {
	first := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.rcptReply = func(string) string { return "450 4.7.1 greylisted" }
	})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", first.port))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%d: %v", first.port, err)
	}
	second := startFake(t, ln)
	dnsAddr, _ := startDNS(t,
		"example.test. 300 IN MX 10 mx1.example.test.",
		"example.test. 300 IN MX 20 mx2.example.test.",
		"mx1.example.test. 300 IN A 127.0.0.1",
		"mx2.example.test. 300 IN A 127.0.0.2",
	)
	c := mustClient(t, Options{Resolver: newResolver(t, dnsAddr), DefaultPort: first.port})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: "example.test",
		Sender: "s@y.test", Recipients: rcpts("u@example.test"), Body: body("hi\n")})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	if _, msgs, _ := second.snapshot(); len(msgs) != 1 {
		t.Errorf("second MX got %d messages", len(msgs))
	}
}

func TestDeliverDNSFailures(t *testing.T) {
	dnsAddr, z := startDNS(t,
		"null.test. 300 IN MX 0 .",
		"noaddr.test. 300 IN TXT \"exists\"",
	)
	z.setServfail("broken.test.")
	c := mustClient(t, Options{Resolver: newResolver(t, dnsAddr)})
	for _, tc := range []struct {
		domain string
		status Status
		dsn    string
		reply  string
	}{
		{"null.test", Bounced, "5.1.0", "Domain null.test does not accept mail (nullMX)"},
		{"nx.test", Bounced, "5.4.4", "Host or domain name not found. Name service error for name=nx.test type=A: Host not found"},
		{"noaddr.test", Bounced, "5.4.4", "Host or domain name not found. Name service error for name=noaddr.test type=A: No address associated with hostname"},
		{"broken.test", Deferred, "4.4.3", "Host or domain name not found. Name service error for name=broken.test type=MX: Host not found, try again"},
	} {
		out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: tc.domain,
			Sender: "s@y.test", Recipients: rcpts("u@" + tc.domain), Body: body("hi\n")})
		checkResult(t, out.Results[0], tc.status, tc.dsn, tc.reply)
		if out.Relay != "none" || out.Results[0].Relay != "none" {
			t.Errorf("%s: relay %q, want none", tc.domain, out.Relay)
		}
	}
}

func TestDeliverAllRefused(t *testing.T) {
	port := closedPort(t)
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: fmt.Sprintf("[127.0.0.1]:%d", port),
		Sender: "", Recipients: rcpts("a@x.test", "b@x.test"), Body: body("hi\n")})
	want := fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection refused", port)
	for _, r := range out.Results {
		checkResult(t, r, Deferred, "4.4.1", want)
	}
	if out.Relay != "none" {
		t.Errorf("relay %q, want none", out.Relay)
	}
}

func TestDeliverFallbackRelay(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{FallbackRelays: []string{s.nexthop()}})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp",
		Nexthop: fmt.Sprintf("[127.0.0.1]:%d", closedPort(t)), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"), Body: body("hi\n")})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	if want := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", s.port); out.Relay != want {
		t.Errorf("relay %q, want %q", out.Relay, want)
	}
}

func TestDeliverTimeoutAfterDot(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.hangAtDot = true
	})
	c := mustClient(t, Options{DataDoneTimeout: 200 * time.Millisecond})
	start := time.Now()
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
		Sender: "s@y.test", Recipients: rcpts("u@x.test"), Body: body("hi\n")})
	checkResult(t, out.Results[0], Deferred, "4.4.2",
		"conversation with 127.0.0.1[127.0.0.1] timed out while sending end of data -- message may be sent more than once")
	if time.Since(start) > 4*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestDeliverNormalizesLineEndings(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
		Sender: "s@y.test", Recipients: rcpts("u@x.test"),
		Body: body("Subject: x\n\nbare lf\nbare cr\rcrlf\r\n.dot\n\r.after-cr\n..two\nno newline at end")})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	_, msgs, _ := s.snapshot()
	want := "Subject: x\r\n\r\nbare lf\r\nbare cr\r\ncrlf\r\n..dot\r\n\r\n..after-cr\r\n...two\r\nno newline at end\r\n.\r\n"
	if len(msgs) != 1 || string(msgs[0]) != want {
		t.Fatalf("wire bytes:\n%q\nwant\n%q", msgs, want)
	}
}

func TestDeliverSizeLimit(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.exts = append(fs.exts, "SIZE 100")
	})
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
		Sender: "s@y.test", Recipients: rcpts("u@x.test"), Body: body("hi\n"), Size: 1000})
	checkResult(t, out.Results[0], Bounced, "5.3.4", "message size 1000 exceeds size limit 100 of server 127.0.0.1[127.0.0.1]")
	if _, msgs, _ := s.snapshot(); len(msgs) != 0 {
		t.Error("message was sent despite SIZE limit")
	}
}

func TestDeliverESMTPParameters(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.exts = []string{"8BITMIME", "SIZE 10000", "DSN", "SMTPUTF8"}
	})
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
		Sender: "s@y.test", Recipients: []Recipient{{Addr: "u@x.test", Notify: "success,failure", ORCPT: "rfc822;u+1@x.test"}},
		Body: body("hi\n"), Size: 3, EightBitMIME: true, SMTPUTF8: true, RET: "hdrs", ENVID: "Q1"})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	_, _, cmds := s.snapshot()
	joined := strings.Join(cmds, "\n")
	for _, want := range []string{
		"MAIL FROM:<s@y.test> BODY=8BITMIME SIZE=3 SMTPUTF8 RET=HDRS ENVID=Q1",
		"RCPT TO:<u@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;u+2B1@x.test",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %q in\n%s", want, joined)
		}
	}

	// A 7bit message to an 8BITMIME server declares BODY=7BIT, as Postfix does.
	c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
		Sender: "s@y.test", Recipients: rcpts("u@x.test"), Body: body("hi\n")})
	if _, _, cmds := s.snapshot(); !strings.Contains(strings.Join(cmds, "\n"), "MAIL FROM:<s@y.test> BODY=7BIT\n") {
		t.Errorf("no BODY=7BIT in\n%s", strings.Join(cmds, "\n"))
	}

	// Without DSN/8BITMIME offered, no such parameters are sent; an
	// SMTPUTF8 message bounces as in Postfix.
	s2 := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.exts = nil
	})
	out = c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s2.nexthop(),
		Sender: "s@y.test", Recipients: []Recipient{{Addr: "u@x.test", Notify: "NEVER"}}, Body: body("hi\n"), RET: "FULL"})
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	_, _, cmds = s2.snapshot()
	joined = strings.Join(cmds, "\n")
	if !strings.Contains(joined, "MAIL FROM:<s@y.test>\n") || !strings.Contains(joined, "RCPT TO:<u@x.test>\n") {
		t.Errorf("unexpected parameters in\n%s", joined)
	}
	out = c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s2.nexthop(),
		Sender: "s@y.test", Recipients: rcpts("u@x.test"), Body: body("hi\n"), SMTPUTF8: true})
	checkResult(t, out.Results[0], Bounced, "5.6.7", "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]")
}

func TestDeliverConnectionReuse(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{ConnectionCacheTimeLimit: 300 * time.Millisecond})
	req := &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"), Body: body("hi\n")}
	first := c.Deliver(context.Background(), req)
	second := c.Deliver(context.Background(), req)
	third := c.Deliver(context.Background(), req)
	for _, o := range []Outcome{first, second, third} {
		checkResult(t, o.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	}
	if first.ConnUse != 0 || second.ConnUse != 2 || third.ConnUse != 3 {
		t.Errorf("conn_use %d %d %d, want 0 2 3", first.ConnUse, second.ConnUse, third.ConnUse)
	}
	if conns, msgs, _ := s.snapshot(); conns != 1 || len(msgs) != 3 {
		t.Errorf("server saw %d connections, %d messages; want 1, 3", conns, len(msgs))
	}
	// After the idle limit the connection is gone; a new one is made.
	deadline := time.Now().Add(3 * time.Second)
	for c.IdleConnections() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.IdleConnections(); n != 0 {
		t.Fatalf("%d idle connections after the time limit", n)
	}
	fourth := c.Deliver(context.Background(), req)
	if fourth.ConnUse != 0 {
		t.Errorf("conn_use %d after expiry", fourth.ConnUse)
	}
	if conns, _, _ := s.snapshot(); conns != 2 {
		t.Errorf("server saw %d connections, want 2", conns)
	}
	c.Close()
	if n := c.IdleConnections(); n != 0 {
		t.Errorf("%d idle connections after Close", n)
	}
}

func TestDeliverReuseDeadCachedConnection(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{ConnectionCacheTimeLimit: 10 * time.Second})
	req := &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"), Body: body("hi\n")}
	c.Deliver(context.Background(), req)
	// The server drops every connection; the parked one is now dead.
	s.mu.Lock()
	for conn := range s.open {
		conn.Close()
	}
	s.mu.Unlock()
	out := c.Deliver(context.Background(), req)
	checkResult(t, out.Results[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	if out.ConnUse != 0 {
		t.Errorf("conn_use %d, want a fresh connection", out.ConnUse)
	}
}

func TestDeliverBodyErrors(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"),
		Body:       func() (io.ReadCloser, error) { return nil, errors.New("queue file missing") }})
	checkResult(t, out.Results[0], Deferred, "4.3.0", "local data error while talking to 127.0.0.1[127.0.0.1]")

	out = c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"),
		Body: func() (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(strings.NewReader("partial"), failingReader{})), nil
		}})
	checkResult(t, out.Results[0], Deferred, "4.3.0", "local data error while talking to 127.0.0.1[127.0.0.1]")
	if _, msgs, _ := s.snapshot(); len(msgs) != 0 {
		t.Errorf("a truncated message was completed with the final dot: %q", msgs)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk error") }

func TestDeliverBadRequests(t *testing.T) {
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "uucp", Nexthop: "x", Recipients: rcpts("u@x.test"), Body: body("")})
	if out.Results[0].Status != Deferred || out.Results[0].DSN != "4.3.5" {
		t.Errorf("bad transport: %+v", out.Results[0])
	}
	out = c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: "[bad", Recipients: rcpts("u@x.test"), Body: body("")})
	if out.Results[0].Status != Deferred || out.Results[0].DSN != "4.3.5" {
		t.Errorf("bad nexthop: %+v", out.Results[0])
	}
	out = c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: "[127.0.0.1]:1",
		Recipients: rcpts("u@x.test>\r\nRSET"), Body: body("")})
	if out.Results[0].Status != Bounced || out.Results[0].DSN != "5.1.3" {
		t.Errorf("bad recipient: %+v", out.Results[0])
	}
	if out := c.Deliver(context.Background(), nil); len(out.Results) != 0 {
		t.Error("nil request produced results")
	}
}

func TestDeliverDuplicateRecipients(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1")
	c := mustClient(t, Options{})
	out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test", "u@x.test"), Body: body("hi\n")})
	for _, r := range out.Results {
		checkResult(t, r, Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
	}
	_, _, cmds := s.snapshot()
	n := 0
	for _, cmd := range cmds {
		if strings.HasPrefix(cmd, "RCPT") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d RCPT commands for a duplicate recipient", n)
	}
}

func TestDeliverContextCanceled(t *testing.T) {
	s := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) {
		fs.hangAtDot = true
	})
	c := mustClient(t, Options{DataDoneTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := c.Deliver(ctx, &Request{Transport: "smtp", Nexthop: s.nexthop(), Sender: "s@y.test",
		Recipients: rcpts("u@x.test"), Body: body("hi\n")})
	if out.Results[0].Status != Deferred {
		t.Errorf("got %+v", out.Results[0])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancellation took %v", d)
	}
}

// With PIPELINING offered, MAIL FROM and every RCPT TO arrive in one go
// (RFC 2920); without it, each command waits for its reply.
func TestDeliverPipelining(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exts      []string
		pipelined bool
	}{{"offered", []string{"PIPELINING", "8BITMIME"}, true}, {"not offered", []string{"8BITMIME"}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, "127.0.0.1", func(fs *fakeServer) { fs.exts = tc.exts })
			c := mustClient(t, Options{})
			out := c.Deliver(context.Background(), &Request{Transport: "smtp", Nexthop: s.nexthop(),
				Sender: "s@y.test", Recipients: rcpts("a@x.test", "b@x.test", "c@x.test"),
				Body: body("Subject: t\n\nhi\n"), Size: 16})
			for _, r := range out.Results {
				checkResult(t, r, Sent, "2.0.0", "250 2.0.0 Ok: queued as ABC")
			}
			s.mu.Lock()
			ahead := append([]int(nil), s.ahead...)
			s.mu.Unlock()
			if len(ahead) != 1 || (ahead[0] > 0) != tc.pipelined {
				t.Fatalf("bytes waiting after MAIL FROM: %v; pipelined %v", ahead, tc.pipelined)
			}
		})
	}
}
