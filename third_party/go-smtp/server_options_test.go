package smtp_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// readReply reads one (possibly multi-line) reply and returns its lines.
func readReply(t *testing.T, scanner *bufio.Scanner) []string {
	t.Helper()
	var lines []string
	for scanner.Scan() {
		line := scanner.Text()
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
	t.Fatalf("connection ended after %q: %v", lines, scanner.Err())
	return nil
}

// expectClosed checks that the server closed the connection.
func expectClosed(t *testing.T, c net.Conn, scanner *bufio.Scanner) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if scanner.Scan() {
		t.Fatalf("expected the connection to be closed, got %q", scanner.Text())
	}
}

func TestServerGreeting(t *testing.T) {
	_, s, c, scanner := testServer(t, func(s *smtp.Server) { s.Greeting = "mx.example.com ESMTP yubin" })
	defer s.Close()
	defer c.Close()
	if got := readReply(t, scanner); got[0] != "220 mx.example.com ESMTP yubin" {
		t.Fatalf("greeting = %q", got)
	}
}

func TestServerBareNewlineRejectCommands(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"EHLO client.example\n", "521 5.5.2 Error: bare <LF> received"},
		{"EHLO client\r.example\r\n", "521 5.5.2 Error: bare <CR> received"},
		{"EHLO client\x00.example\r\n", "521 5.5.2 Error: NUL character received"},
	} {
		_, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) { s.BareNewline = smtp.BareNewlineReject })
		io.WriteString(c, tc.line)
		if got := readReply(t, scanner); got[0] != tc.want {
			t.Errorf("%q: reply %q, want %q", tc.line, got, tc.want)
		}
		expectClosed(t, c, scanner)
		c.Close()
		s.Close()
	}
}

// smugglingSequences are line-ending tricks that some receivers take for
// the end of DATA.
var smugglingSequences = []string{
	"\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n", "\r.\r\n",
	"\r\n\x00.\r\n", "\r\n.\r\r\n", "\r\r\n.\r\r\n",
}

func sendSmuggled(t *testing.T, policy smtp.BareNewlinePolicy, seq string) (*backend, []string) {
	t.Helper()
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) {
		s.BareNewline = policy
		if testing.Verbose() {
			s.Debug = os.Stderr
		}
	})
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "HELO client.example\r\n")
	readReply(t, scanner)
	io.WriteString(c, "MAIL FROM:<a@example.com>\r\n")
	readReply(t, scanner)
	io.WriteString(c, "RCPT TO:<b@example.com>\r\n")
	readReply(t, scanner)
	io.WriteString(c, "DATA\r\n")
	readReply(t, scanner)
	io.WriteString(c, "Subject: one\r\n\r\nbody"+seq+"MAIL FROM:<evil@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: two\r\n\r\n.\r\nQUIT\r\n")
	var replies []string
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for scanner.Scan() {
		replies = append(replies, scanner.Text())
	}
	return be, replies
}

func TestServerSmugglingReject(t *testing.T) {
	for _, seq := range smugglingSequences {
		be, replies := sendSmuggled(t, smtp.BareNewlineReject, seq)
		if len(be.anonmsgs) != 0 {
			t.Errorf("%q: %d messages queued, want none: %q", seq, len(be.anonmsgs), be.anonmsgs[0].Data)
		}
		if len(replies) != 1 || !strings.HasPrefix(replies[0], "521 5.5.2 ") {
			t.Errorf("%q: replies %q, want one 521", seq, replies)
		}
	}
}

func TestServerSmugglingAllowNormalize(t *testing.T) {
	for _, policy := range []smtp.BareNewlinePolicy{smtp.BareNewlineAllow, smtp.BareNewlineNormalize} {
		for _, seq := range smugglingSequences {
			be, replies := sendSmuggled(t, policy, seq)
			if len(be.anonmsgs) > 1 {
				t.Errorf("policy %d, %q: %d messages from one DATA", policy, seq, len(be.anonmsgs))
			}
			for _, m := range be.anonmsgs {
				if m.From != "a@example.com" {
					t.Errorf("policy %d, %q: smuggled message from %q", policy, seq, m.From)
				}
			}
			if len(replies) == 0 {
				t.Errorf("policy %d, %q: no reply", policy, seq)
			}
		}
	}
}

func TestServerBareNewlineNormalizeContent(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) { s.BareNewline = smtp.BareNewlineNormalize })
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	for i := 0; i < 4; i++ {
		readReply(t, scanner)
	}
	io.WriteString(c, "a\nb\n.\nc\r\n.\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "250 ") {
		t.Fatalf("end of data: %q", got)
	}
	if len(be.anonmsgs) != 1 {
		t.Fatalf("got %d messages", len(be.anonmsgs))
	}
	if got, want := string(be.anonmsgs[0].Data), "a\r\nb\r\n.\r\nc\r\n"; got != want {
		t.Errorf("data = %q, want %q", got, want)
	}
}

func TestServerEnforceSync(t *testing.T) {
	sync := func(s *smtp.Server) { s.EnforceSync = true }
	for _, tc := range []struct {
		name  string
		steps []string // each written at once; the last must draw the 554
	}{
		{"pipelined after EHLO", []string{"EHLO c\r\nMAIL FROM:<a@example.com>\r\n"}},
		{"pipelined without EHLO", []string{"HELO c\r\n", "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"}},
		{"content before 354", []string{"EHLO c\r\n", "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n"}},
		{"pipelined after NOOP", []string{"EHLO c\r\n", "NOOP\r\nNOOP\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s, c, scanner := testServerGreeted(t, sync)
			defer s.Close()
			defer c.Close()
			var last []string
			for _, step := range tc.steps {
				io.WriteString(c, step)
				for {
					last = readReply(t, scanner)
					if strings.HasPrefix(last[0], "554") || !strings.Contains(step[:len(step)-2], "\r\n") {
						break
					}
					step = step[strings.Index(step, "\r\n")+2:]
				}
			}
			if last[0] != "554 5.5.0 Error: SMTP protocol synchronization" {
				t.Fatalf("last reply %q", last)
			}
			expectClosed(t, c, scanner)
		})
	}
}

func TestServerEnforceSyncAllowsPipelining(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) { s.EnforceSync = true })
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "EHLO c\r\n")
	readReply(t, scanner)
	io.WriteString(c, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "354"} {
		if got := readReply(t, scanner); !strings.HasPrefix(got[0], want) {
			t.Fatalf("reply %q, want %s", got, want)
		}
	}
	io.WriteString(c, "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "250") {
		t.Fatalf("end of data: %q", got)
	}
	if len(be.anonmsgs) != 1 {
		t.Fatalf("got %d messages", len(be.anonmsgs))
	}
}

func TestServerGreetPause(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(new(backend))
	s.EnforceSync = true
	s.GreetPause = 300 * time.Millisecond
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	scanner := bufio.NewScanner(c)
	io.WriteString(c, "EHLO early\r\n")
	if got := readReply(t, scanner); got[0] != "554 5.5.0 Error: SMTP protocol synchronization" {
		t.Fatalf("reply %q", got)
	}
	expectClosed(t, c, scanner)

	// A patient client gets the greeting.
	c2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	sc2 := bufio.NewScanner(c2)
	if got := readReply(t, sc2); !strings.HasPrefix(got[0], "220 ") {
		t.Fatalf("greeting %q", got)
	}
}

func TestServerRawPaths(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) { s.RawPaths = true })
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "EHLO c\r\n")
	readReply(t, scanner)
	io.WriteString(c, "MAIL FROM:<\"a b>\"@example.com> SIZE=10\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "250") {
		t.Fatalf("MAIL: %q", got)
	}
	io.WriteString(c, "RCPT TO:<@relay.example:u@example.com>\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "250") {
		t.Fatalf("RCPT: %q", got)
	}
	io.WriteString(c, "DATA\r\n")
	readReply(t, scanner)
	io.WriteString(c, "x\r\n.\r\n")
	readReply(t, scanner)
	if len(be.anonmsgs) != 1 {
		t.Fatalf("got %d messages", len(be.anonmsgs))
	}
	m := be.anonmsgs[0]
	if m.From != `<"a b>"@example.com>` || m.Opts.Size != 10 {
		t.Errorf("from %q size %d", m.From, m.Opts.Size)
	}
	if len(m.To) != 1 || m.To[0] != "<@relay.example:u@example.com>" {
		t.Errorf("to %q", m.To)
	}
}

func TestServerHeloOptional(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) { s.HeloOptional = true })
	defer s.Close()
	defer c.Close()
	for _, cmd := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA", "x\r\n."} {
		io.WriteString(c, cmd+"\r\n")
		if got := readReply(t, scanner); got[0][0] != '2' && got[0][0] != '3' {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	if len(be.anonmsgs) != 1 {
		t.Fatalf("got %d messages", len(be.anonmsgs))
	}
}

func TestServerHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	disconnected := make(chan struct{})
	_, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) {
		s.ConnectHook = func(c *smtp.Conn) error { record("connect"); return nil }
		s.DisconnectHook = func(c *smtp.Conn) { record("disconnect"); close(disconnected) }
		s.CommandHook = func(c *smtp.Conn, line string) error {
			record("cmd " + line)
			switch {
			case strings.HasPrefix(line, "VRFY"):
				return &smtp.SMTPError{Code: 252, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "handled"}
			case line == "XBAD":
				return &smtp.SMTPError{Code: 502, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Error: command not recognized"}
			case line == "XEND":
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "bye"}
			}
			return nil
		}
		s.ReplyHook = func(c *smtp.Conn, r *smtp.Reply) {
			if r.Command == "NOOP" && r.Code == 250 {
				r.EnhancedCode = smtp.EnhancedCode{2, 0, 0}
				r.Lines = []string{"Ok"}
			}
		}
	})
	defer s.Close()
	defer c.Close()
	for _, tc := range []struct{ cmd, want string }{
		{"VRFY x", "252 2.0.0 handled"},
		{"XBAD", "502 5.5.2 Error: command not recognized"},
		{"NOOP", "250 2.0.0 Ok"},
		{"XEND", "421 4.7.0 bye"},
	} {
		io.WriteString(c, tc.cmd+"\r\n")
		if got := readReply(t, scanner); got[0] != tc.want {
			t.Errorf("%s: %q, want %q", tc.cmd, got, tc.want)
		}
	}
	expectClosed(t, c, scanner)
	select {
	case <-disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("DisconnectHook not called")
	}
	mu.Lock()
	defer mu.Unlock()
	want := "connect,cmd VRFY x,cmd XBAD,cmd NOOP,cmd XEND,disconnect"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

func TestServerConnectHookRefuses(t *testing.T) {
	_, s, c, scanner := testServer(t, func(s *smtp.Server) {
		s.ConnectHook = func(c *smtp.Conn) error {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service currently unavailable"}
		}
	})
	defer s.Close()
	defer c.Close()
	if got := readReply(t, scanner); got[0] != "421 4.3.2 Service currently unavailable" {
		t.Fatalf("reply %q", got)
	}
	expectClosed(t, c, scanner)
}

func TestServerMaxDataLineLength(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t, func(s *smtp.Server) {
		s.MaxLineLength = 100
		s.MaxDataLineLength = -1
	})
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	for i := 0; i < 4; i++ {
		readReply(t, scanner)
	}
	long := strings.Repeat("x", 5000)
	io.WriteString(c, long+"\r\n.\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "250") {
		t.Fatalf("end of data: %q", got)
	}
	if len(be.anonmsgs) != 1 || string(be.anonmsgs[0].Data) != long+"\r\n" {
		t.Fatal("long line not received intact")
	}
	// Commands keep the limit.
	io.WriteString(c, "NOOP "+long+"\r\n")
	if got := readReply(t, scanner); !strings.HasPrefix(got[0], "500") {
		t.Fatalf("long command: %q", got)
	}
}
