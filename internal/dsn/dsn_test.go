package dsn

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	jst     = time.FixedZone("JST", 9*3600)
	arrival = time.Date(2024, 3, 1, 9, 5, 7, 0, jst)
	now     = time.Date(2024, 3, 2, 10, 0, 0, 0, jst)
)

const original = "Received: from client.example.org\r\nMessage-ID: <abc@example.org>\r\nFrom: joe@example.org\r\nTo: ann@example.com\r\nSubject: hi\r\n\r\nHello Ann,\r\nbye\r\n"

func opener(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func failure() *Notification {
	return &Notification{
		ReportingMTA: "mx1.example.com", QueueID: "4TQbXq1zKkz9", NewQueueID: "4TQbZZ0000z1",
		Sender: "joe@example.org", ENVID: "ENV-1", Arrival: arrival, Kind: Failure, Now: now,
		Recipients: []RcptStatus{{
			Addr: "ann@example.com", ORCPT: "rfc822;info@example.com", Status: "5.1.1",
			RemoteMTA: "mx.example.com", Diagnostic: "smtp; 550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
			Reason: "host mx.example.com[192.0.2.25] said: 550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
		}},
		Original: opener(original),
	}
}

type parsed struct {
	header mail.Header
	parts  []part
}

type part struct {
	header textproto.MIMEHeader
	body   string
}

func parse(t *testing.T, msg []byte) parsed {
	t.Helper()
	if bytes.Contains(msg, []byte("\r")) {
		t.Error("message contains CR; LF endings promised")
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var p parsed
	p.header = m.Header
	for {
		pt, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		body, _ := io.ReadAll(pt)
		p.parts = append(p.parts, part{textproto.MIMEHeader(pt.Header), string(body)})
	}
	if len(p.parts) != 3 {
		t.Fatalf("%d parts, want 3", len(p.parts))
	}
	return p
}

// fields parses a message/delivery-status body into its groups.
func fields(t *testing.T, body string) []map[string]string {
	t.Helper()
	var groups []map[string]string
	for _, g := range strings.Split(strings.TrimSpace(body), "\n\n") {
		r := textproto.NewReader(bufio.NewReader(strings.NewReader(g + "\n\n")))
		h, err := r.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("delivery-status group %q: %v", g, err)
		}
		m := map[string]string{}
		for k := range h {
			m[k] = h.Get(k)
		}
		groups = append(groups, m)
	}
	return groups
}

func TestComposeFailure(t *testing.T) {
	msg, err := Compose(failure())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, msg)
	h := p.header
	for k, want := range map[string]string{
		"From":           "MAILER-DAEMON@mx1.example.com (Mail Delivery System)",
		"Subject":        "Undelivered Mail Returned to Sender",
		"To":             "joe@example.org",
		"Auto-Submitted": "auto-replied",
		"Message-Id":     "<20240302010000.4TQbZZ0000z1@mx1.example.com>",
		"In-Reply-To":    "<abc@example.org>",
		"Date":           "Sat,  2 Mar 2024 10:00:00 +0900 (JST)",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date does not parse back: %v %v", d, err)
	}
	if a, err := mail.ParseAddress(h.Get("From")); err != nil || a.Address != "MAILER-DAEMON@mx1.example.com" {
		t.Errorf("From does not parse: %v %v", a, err)
	}

	text := p.parts[0]
	if text.header.Get("Content-Type") != "text/plain; charset=us-ascii" || text.header.Get("Content-Description") != "Notification" {
		t.Errorf("part 1 headers %v", text.header)
	}
	for _, want := range []string{
		"This is the mail system at host mx1.example.com.",
		"I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.",
		"For further assistance, please send mail to postmaster.",
		"<ann@example.com> (expanded from <info@example.com>): host\n    mx.example.com[192.0.2.25] said:",
	} {
		if !strings.Contains(text.body, want) {
			t.Errorf("notification lacks %q:\n%s", want, text.body)
		}
	}
	for _, l := range strings.Split(text.body, "\n") {
		if len(l) > 79 && strings.Contains(l, " ") {
			t.Errorf("line not wrapped: %q", l)
		}
	}

	if ct := p.parts[1].header.Get("Content-Type"); ct != "message/delivery-status" {
		t.Errorf("part 2 type %q", ct)
	}
	g := fields(t, p.parts[1].body)
	if len(g) != 2 {
		t.Fatalf("%d field groups, want 2", len(g))
	}
	wantMsg := map[string]string{"Reporting-Mta": "dns; mx1.example.com", "Original-Envelope-Id": "ENV-1",
		"X-Postfix-Queue-Id": "4TQbXq1zKkz9", "X-Postfix-Sender": "rfc822; joe@example.org",
		"Arrival-Date": "Fri,  1 Mar 2024 09:05:07 +0900 (JST)"}
	wantRcpt := map[string]string{"Final-Recipient": "rfc822; ann@example.com", "Original-Recipient": "rfc822;info@example.com",
		"Action": "failed", "Status": "5.1.1", "Remote-Mta": "dns; mx.example.com",
		"Diagnostic-Code": "smtp; 550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown in virtual mailbox table"}
	for i, want := range []map[string]string{wantMsg, wantRcpt} {
		for k, v := range want {
			if g[i][k] != v {
				t.Errorf("group %d %s = %q, want %q", i, k, g[i][k], v)
			}
		}
	}

	orig := p.parts[2]
	if orig.header.Get("Content-Type") != "message/rfc822" || orig.header.Get("Content-Description") != "Undelivered Message" {
		t.Errorf("part 3 headers %v", orig.header)
	}
	om, err := mail.ReadMessage(strings.NewReader(orig.body))
	if err != nil {
		t.Fatal(err)
	}
	if om.Header.Get("Return-Path") != "<joe@example.org>" || om.Header.Get("Subject") != "hi" {
		t.Errorf("returned message headers %v", om.Header)
	}
	if b, _ := io.ReadAll(om.Body); string(b) != "Hello Ann,\nbye\n" {
		t.Errorf("returned body %q", b)
	}
	golden(t, "failure.golden", msg)
}

// golden compares msg with testdata/name; go test -update rewrites it.
func golden(t *testing.T, name string, msg []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, msg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update)", err)
	}
	if !bytes.Equal(msg, want) {
		t.Errorf("message differs from %s:\n%s", path, msg)
	}
}

func TestComposeDelay(t *testing.T) {
	n := failure()
	n.Kind = Delay
	n.RET = "FULL"
	n.DelayWarningTime = 4 * time.Hour
	n.MaximalQueueLifetime = 5 * 24 * time.Hour
	n.Recipients[0] = RcptStatus{Addr: "ann@example.com", Status: "4.4.1", Diagnostic: "connect to mx.example.com[192.0.2.25]:25: Connection refused",
		WillRetryUntil: arrival.Add(5 * 24 * time.Hour), LastAttempt: now.Add(-time.Minute)}
	msg, err := Compose(n)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, msg)
	if s := p.header.Get("Subject"); s != "Delayed Mail (still being retried)" {
		t.Errorf("subject %q", s)
	}
	for _, want := range []string{"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
		"Your message could not be delivered for more than 4 hour(s).", "It will be retried until it is 5 day(s) old.",
		"<ann@example.com>: connect to mx.example.com[192.0.2.25]:25: Connection refused"} {
		if !strings.Contains(p.parts[0].body, want) {
			t.Errorf("delay text lacks %q:\n%s", want, p.parts[0].body)
		}
	}
	g := fields(t, p.parts[1].body)
	for k, v := range map[string]string{"Action": "delayed", "Status": "4.4.1",
		"Diagnostic-Code":  "X-Postfix; connect to mx.example.com[192.0.2.25]:25: Connection refused",
		"Will-Retry-Until": "Wed,  6 Mar 2024 09:05:07 +0900 (JST)", "Last-Attempt-Date": "Sat,  2 Mar 2024 09:59:00 +0900 (JST)"} {
		if g[1][k] != v {
			t.Errorf("%s = %q, want %q", k, g[1][k], v)
		}
	}
	// A delay warning carries headers only, even with RET=FULL.
	if p.parts[2].header.Get("Content-Type") != "text/rfc822-headers" ||
		p.parts[2].header.Get("Content-Description") != "Undelivered Message Headers" || strings.Contains(p.parts[2].body, "Hello Ann") {
		t.Errorf("part 3: %v\n%s", p.parts[2].header, p.parts[2].body)
	}
}

func TestComposeSuccessAndMixed(t *testing.T) {
	n := failure()
	n.Kind = Success
	n.Recipients = []RcptStatus{{Addr: "ann@example.com", Diagnostic: "smtp; 250 2.0.0 Ok: queued as X", RemoteMTA: "dns; mx.example.com"}}
	msg, err := Compose(n)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, msg)
	if s := p.header.Get("Subject"); s != "Successful Mail Delivery Report" {
		t.Errorf("subject %q", s)
	}
	if g := fields(t, p.parts[1].body); g[1]["Action"] != "delivered" || g[1]["Status"] != "2.0.0" {
		t.Errorf("success fields %v", g[1])
	}
	if !strings.Contains(p.parts[0].body, "Your message was successfully delivered") || strings.Contains(p.parts[0].body, "sorry") {
		t.Errorf("success text:\n%s", p.parts[0].body)
	}
	if p.parts[2].header.Get("Content-Description") != "Message Headers" {
		t.Errorf("success part 3 %v", p.parts[2].header)
	}

	n = failure()
	n.Recipients = append(n.Recipients, RcptStatus{Addr: "bob@example.com", Action: "delivered", Status: "2.0.0", Diagnostic: "x-unix; delivered to mailbox"})
	msg, err = Compose(n)
	if err != nil {
		t.Fatal(err)
	}
	if s := parse(t, msg).header.Get("Subject"); s != "Mail Delivery Status Report" {
		t.Errorf("mixed subject %q", s)
	}
}

func TestComposeOriginalVariants(t *testing.T) {
	n := failure()
	n.RET = "HDRS"
	msg, _ := Compose(n)
	p := parse(t, msg)
	if p.parts[2].header.Get("Content-Type") != "text/rfc822-headers" || strings.Contains(p.parts[2].body, "Hello Ann") ||
		!strings.Contains(p.parts[2].body, "Subject: hi") {
		t.Errorf("RET=HDRS part: %v\n%s", p.parts[2].header, p.parts[2].body)
	}

	n = failure()
	n.BounceSizeLimit = 50
	msg, _ = Compose(n)
	if p := parse(t, msg); p.parts[2].header.Get("Content-Type") != "text/rfc822-headers" || strings.Contains(p.parts[2].body, "Hello") {
		t.Errorf("over bounce_size_limit: %v", p.parts[2].header)
	}

	n = failure()
	n.Original = nil
	msg, _ = Compose(n)
	if p := parse(t, msg); !strings.Contains(p.parts[2].body, "--- Undelivered message unavailable ---") {
		t.Errorf("unavailable original: %q", p.parts[2].body)
	}

	// An original that contains our boundary must not break the MIME tree.
	n = failure()
	n.Original = opener("Subject: x\n\n--4TQbZZ0000z1.1709341200/mx1.example.com\n--4TQbZZ0000z1.1709341200/mx1.example.com--\n")
	msg, _ = Compose(n)
	parse(t, msg)

	n = failure()
	n.Original = opener("Subject: caf\xc3\xa9\n\nna\xc3\xafve\n")
	msg, _ = Compose(n)
	if p := parse(t, msg); p.header.Get("Content-Transfer-Encoding") != "8bit" || p.parts[2].header.Get("Content-Transfer-Encoding") != "8bit" {
		t.Errorf("8-bit original not declared")
	}
}

func TestComposeRejects(t *testing.T) {
	mod := []func(*Notification){
		func(n *Notification) { n.Sender = "" },
		func(n *Notification) { n.Sender = "<>" },
		func(n *Notification) { n.Recipients = nil },
		func(n *Notification) { n.Kind = 0 },
		func(n *Notification) { n.ReportingMTA = "" },
		func(n *Notification) { n.RET = "SOME" },
		func(n *Notification) { n.Recipients[0].Status = "5.1" },
		func(n *Notification) { n.Recipients[0].Action = "lost" },
		func(n *Notification) { n.Recipients[0].Addr = "" },
		func(n *Notification) { n.Sender = "joe@example.org\nBcc: victim@example.net" },
		func(n *Notification) { n.Recipients[0].Diagnostic = "smtp; 550\r\nX-Evil: 1" },
		func(n *Notification) {
			n.Original = func() (io.ReadCloser, error) { return nil, os.ErrNotExist }
		},
	}
	for i, m := range mod {
		n := failure()
		m(n)
		if _, err := Compose(n); err == nil {
			t.Errorf("case %d: bad notification accepted", i)
		}
	}
	if _, err := Compose(nil); err == nil {
		t.Error("nil accepted")
	}
}

func TestShouldNotify(t *testing.T) {
	tests := []struct {
		sender, notify string
		kind           Kind
		want           bool
	}{
		{"joe@x", "", Failure, true},
		{"joe@x", "", Delay, true},
		{"joe@x", "", Success, false},
		{"", "", Failure, false},
		{"<>", "SUCCESS", Success, false},
		{"joe@x", "NEVER", Failure, false},
		{"joe@x", "SUCCESS", Success, true},
		{"joe@x", "SUCCESS", Failure, false},
		{"joe@x", "success,failure", Failure, true},
		{"joe@x", "FAILURE", Delay, false},
		{"joe@x", "DELAY, FAILURE", Delay, true},
		{"joe@x", "SUCCESS,NEVER", Success, false},
	}
	for _, tt := range tests {
		if got := ShouldNotify(tt.sender, tt.notify, tt.kind); got != tt.want {
			t.Errorf("ShouldNotify(%q, %q, %v) = %v, want %v", tt.sender, tt.notify, tt.kind, got, tt.want)
		}
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"short", []string{"short"}},
		{"aaaa bbbb cccc", []string{"aaaa bbbb", "    cccc"}},
		{"aaaa bbbb cccc dddd", []string{"aaaa bbbb", "    cccc", "    dddd"}},
		{"aaaaaaaaaaaaaa b", []string{"aaaaaaaaaaaaaa", "    b"}},
		{"nospaceatallhere", []string{"nospaceatallhere"}},
	}
	for _, tt := range tests {
		got := wrap(tt.in, 10, 4)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("wrap(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCompose(f *testing.F) {
	f.Add("joe@example.org", "ann@example.com", "smtp; 550 5.1.1 no", "Subject: x\n\nbody\n", "")
	f.Add("a@b", "c@d", "", "", "HDRS")
	f.Fuzz(func(t *testing.T, sender, rcpt, diag, orig, ret string) {
		n := failure()
		n.Sender, n.RET = sender, ret
		n.Recipients[0] = RcptStatus{Addr: rcpt, Diagnostic: diag}
		n.Original = opener(orig)
		msg, err := Compose(n)
		if err != nil {
			return // rejected input is fine; accepted input must be sound
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("unparsable DSN: %v\n%s", err, msg)
		}
		if want := mailbox.QuoteLocal(sender); m.Header.Get("To") != strings.TrimSpace(want) {
			t.Fatalf("To %q, want %q", m.Header.Get("To"), want)
		}
		_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(m.Body, params["boundary"])
		count := 0
		for {
			_, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("multipart: %v\n%s", err, msg)
			}
			count++
		}
		if count != 3 {
			t.Fatalf("%d parts\n%s", count, msg)
		}
	})
}
