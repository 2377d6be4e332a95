package inbound

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// smugglingSequences are the line-ending tricks that make some receivers
// see an end of DATA where the sender's relay saw none.
var smugglingSequences = []string{
	"\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n", "\r.\r\n",
	"\r\n\x00.\r\n", "\r\n.\r\r\n", "\r\r\n.\r\r\n",
}

func TestSmugglingAfterData(t *testing.T) {
	for _, mode := range []string{"yes", "normalize", "no"} {
		for _, seq := range smugglingSequences {
			ts := startServer(t, func(s *Settings) { s.ForbidBareNewline = mode })
			c := dial(t, ts.addr)
			c.reply()
			c.cmd("EHLO client.example")
			c.cmd("MAIL FROM:<s@remote.example>")
			c.cmd("RCPT TO:<alice@example.com>")
			c.cmd("DATA")
			c.send("Subject: one\r\n\r\nbody" + seq +
				"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n")
			first := c.reply()
			c.closed()
			n := ts.q.count()
			if n > 1 {
				t.Errorf("mode %s, %q: %d messages from one DATA", mode, seq, n)
			}
			if mode == "yes" {
				if n != 0 || !strings.HasPrefix(first, "521 5.5.2 mx.example.com Error: bare <") && !strings.HasPrefix(first, "521 5.5.2 mx.example.com Error: NUL") {
					t.Errorf("mode yes, %q: reply %q, %d queued", seq, first, n)
				}
			}
			for i := 0; i < n; i++ {
				if ts.q.msgs[i].Sender != "s@remote.example" {
					t.Errorf("mode %s, %q: smuggled message from %s", mode, seq, ts.q.msgs[i].Sender)
				}
			}
		}
	}
}

func TestBareNewlineInCommand(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.reply()
	c.send("EHLO client.example\n")
	if got := c.reply(); got != "521 5.5.2 mx.example.com Error: bare <LF> received" {
		t.Errorf("got %q", got)
	}
	if !c.closed() {
		t.Error("not closed")
	}
	ts.waitLog(t, "warning: bare <LF> received from localhost[127.0.0.1]")
	ts.waitLog(t, "improper use of bare newline after CONNECT from localhost[127.0.0.1]")
}

func TestNormalizeKeepsCRLF(t *testing.T) {
	ts := startServer(t, func(s *Settings) { s.ForbidBareNewline = "normalize" })
	c := dial(t, ts.addr)
	c.reply()
	c.send("EHLO client.example\n") // accepted as a command line in normalize mode
	c.reply()
	c.cmd("MAIL FROM:<s@remote.example>")
	c.cmd("RCPT TO:<alice@example.com>")
	c.cmd("DATA")
	c.send("Subject: x\n\na\nb\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("got %q", got)
	}
	if body := string(ts.q.bodies[0]); !strings.HasSuffix(body, "(JST)\r\n\r\na\r\nb\r\n") {
		t.Errorf("body %q", body)
	}
}

func TestPipeliningSynchronization(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   []string // commands sent one at a time
		burst   string   // sent in one write
		replies int      // replies expected before the 554
	}{
		{"pipelining after HELO", []string{"HELO client.example"}, "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\n", 0},
		{"pipelining before HELO", nil, "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\n", 0},
		{"EHLO is last in a group", nil, "EHLO client.example\r\nMAIL FROM:<s@remote.example>\r\n", 0},
		{"data before 354", []string{"EHLO client.example"}, "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, nil)
			c := dial(t, ts.addr)
			c.reply()
			for _, cmd := range tc.setup {
				c.cmd(cmd)
			}
			c.send(tc.burst)
			for i := 0; i < tc.replies; i++ {
				c.reply()
			}
			if got := c.reply(); got != "554 5.5.0 Error: SMTP protocol synchronization" {
				t.Errorf("got %q", got)
			}
			if !c.closed() {
				t.Error("not closed")
			}
			if ts.q.count() != 0 {
				t.Error("message queued")
			}
			ts.waitLog(t, "improper command pipelining after")
		})
	}
}

func TestPipeliningAllowedAfterEHLO(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.reply()
	c.cmd("EHLO client.example")
	c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("got %q", got)
	}
	if got := c.reply(); got != "221 2.0.0 Bye" {
		t.Fatalf("got %q", got)
	}
}

func TestPreGreetingTalker(t *testing.T) {
	ts := startServer(t, func(s *Settings) { s.GreetPause = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.send("EHLO eager.example\r\n")
	if got := c.reply(); got != "554 5.5.0 Error: SMTP protocol synchronization" {
		t.Errorf("got %q", got)
	}
	if !c.closed() {
		t.Error("not closed")
	}
}

func swaks(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks is not installed")
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("swaks timed out: %s", out)
	}
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	return string(out)
}

func TestSwaks(t *testing.T) {
	for _, pipeline := range []bool{false, true} {
		ts := startServer(t, nil)
		host, port, _ := strings.Cut(ts.addr, ":")
		args := []string{"--server", host, "--port", port, "--from", "sender@remote.example", "--to", "alice@example.com",
			"--helo", "client.example", "--header", "Subject: swaks test", "--body", "hello from swaks", "--timeout", "10"}
		if pipeline {
			args = append(args, "--pipeline")
		}
		out := swaks(t, args...)
		if !strings.Contains(out, "<-  250 2.0.0 Ok: queued as") && !strings.Contains(out, "<-  250 2.0.0 Ok: queued as") {
			t.Errorf("pipeline=%v: no queued reply:\n%s", pipeline, out)
		}
		if ts.q.count() != 1 {
			t.Fatalf("pipeline=%v: %d messages queued\n%s", pipeline, ts.q.count(), out)
		}
		if body := string(ts.q.bodies[0]); !strings.Contains(body, "Subject: swaks test\r\n") || !strings.Contains(body, "hello from swaks") {
			t.Errorf("pipeline=%v: body %q", pipeline, body)
		}
	}
}
