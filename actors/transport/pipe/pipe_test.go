package pipe

import (
	"context"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"maildrop", []string{"flags=DRhu", "user=vmail", "argv=/usr/bin/maildrop", "-d", "${recipient}"},
			Options{Service: "svc", Flags: "DRhu", User: "vmail", Argv: []string{"/usr/bin/maildrop", "-d", "${recipient}"}}, ""},
		{"braces", []string{"user=x:y", "eol=\\r\\n", "size=100", "null_sender=", "argv=/bin/echo", "{", "a", "b", "}", "{c d}"},
			Options{Service: "svc", User: "x:y", EOL: "\r\n", Size: 100, NullSender: new(string), Argv: []string{"/bin/echo", "a b", "c d"}}, ""},
		{"no argv", []string{"user=x"}, Options{}, "missing argv="},
		{"no user", []string{"argv=/bin/true"}, Options{}, "missing user="},
		{"unknown", []string{"user=x", "bogus=1", "argv=/bin/true"}, Options{}, `unknown attribute "bogus"`},
		{"bad size", []string{"user=x", "size=-1", "argv=/bin/true"}, Options{}, "bad size"},
		{"bad brace", []string{"user=x", "argv=/bin/echo", "{", "a"}, Options{}, "missing '}'"},
		{"bad eol", []string{"user=x", "eol=\\q", "argv=/bin/true"}, Options{}, "unknown escape"},
		{"not attr", []string{"user"}, Options{}, "not name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs("svc", tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Service != tt.want.Service || got.Flags != tt.want.Flags || got.User != tt.want.User ||
				got.EOL != tt.want.EOL || got.Size != tt.want.Size || strings.Join(got.Argv, "|") != strings.Join(tt.want.Argv, "|") ||
				(got.NullSender == nil) != (tt.want.NullSender == nil) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vals := map[string]string{"sender": "s@x", "recipient": "r@y", "user": "r", "nexthop": "hop"}
	get := func(n string) string { return vals[n] }
	tests := []struct{ in, want, err string }{
		{"-f${sender}", "-fs@x", ""},
		{"$recipient", "r@y", ""},
		{"$(user).$nexthop", "r.hop", ""},
		{"cost $$5", "cost $5", ""},
		{"${client_address}", "", ""},
		{"${bogus}", "", "unknown macro"},
		{"${sender", "", "missing"},
		{"end$", "", "at end"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, get)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// runUser is nobody when running as root, else the current user (pipe
// refuses root, so then the test is skipped).
func runUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("nobody"); err != nil {
			t.Skip("no user nobody")
		}
		return "nobody"
	}
	u, err := user.Current()
	if err != nil || u.Uid == "0" {
		t.Skip("no usable user")
	}
	return u.Username
}

func outDir(t *testing.T) string {
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(dir, 0o1777)
	return dir
}

func newAgent(t *testing.T, args ...string) *Agent {
	t.Helper()
	opts, err := ParseArgs("filter", append([]string{"user=" + runUser(t)}, args...))
	if err != nil {
		t.Fatal(err)
	}
	opts.RecipientDelimiter = "+"
	opts.TimeLimit = 10 * time.Second
	a, err := New(opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func delivery(body string) *Delivery {
	return &Delivery{
		QueueID: "4QID", Sender: "", Recipient: "Ann+Tag@Example.COM", OrigRecipient: "info@example.com",
		Nexthop: "Example.COM",
		Body:    func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil },
	}
}

func TestDeliverArgvAndFlags(t *testing.T) {
	dir := outDir(t)
	argsFile, inFile := filepath.Join(dir, "args"), filepath.Join(dir, "in")
	a := newAgent(t, "flags=FRDO.>Xhu", "argv=/bin/sh", "-c", `printf '%s\n' "$$@" > `+argsFile+`; cat > `+inFile, "sh",
		"${sender}", "${recipient}", "${original_recipient}", "${user}", "${extension}", "${domain}", "${nexthop}", "${queue_id}", "${mailbox}", "${size}")
	body := "Subject: x\r\n\r\nFrom me\r\n.dot\r\n"
	res := a.Deliver(context.Background(), delivery(body))
	if res.Status != mailbox.Sent || res.Reply != "delivered via filter service" || res.Relay != "filter" || res.Action != "delivered" {
		t.Fatalf("got %+v", res)
	}
	args, _ := os.ReadFile(argsFile)
	want := "MAILER-DAEMON\nann+tag@example.com\ninfo@example.com\nann\ntag\nexample.com\nexample.com\n4QID\nann+tag\n" +
		"29\n" // raw size of body
	if string(args) != want {
		t.Errorf("argv\n%q\nwant\n%q", args, want)
	}
	in, _ := os.ReadFile(inFile)
	lines := strings.SplitN(string(in), "\n", 2)
	if !strings.HasPrefix(lines[0], "From MAILER-DAEMON  ") {
		t.Errorf("From_ line %q", lines[0])
	}
	wantIn := "Return-Path: <MAILER-DAEMON>\nX-Original-To: info@example.com\nDelivered-To: Ann+Tag@Example.COM\n" +
		"Subject: x\n\n>From me\n..dot\n"
	if lines[1] != wantIn {
		t.Errorf("stdin\n%q\nwant\n%q", lines[1], wantIn)
	}
}

func TestDeliverStatuses(t *testing.T) {
	dir := outDir(t)
	tests := []struct {
		name   string
		args   []string
		body   string
		status mailbox.Status
		dsn    string
		reply  string
	}{
		{"tempfail", []string{"argv=/bin/sh", "-c", "echo later; exit 75"}, "x\n", mailbox.Deferred, "4.3.0", "temporary failure. Command output: later "},
		{"status 1", []string{"argv=/bin/sh", "-c", "exit 1"}, "x\n", mailbox.Bounced, "5.3.0", `Command died with status 1: "/bin/sh"`},
		{"output dsn", []string{"argv=/bin/sh", "-c", "echo 5.1.1 gone; exit 67"}, "x\n", mailbox.Bounced, "5.1.1", "gone "},
		{"relayed with output", []string{"argv=/bin/sh", "-c", "cat >/dev/null; echo queued as X"}, "x\n", mailbox.Sent, "2.0.0", "delivered via filter service (queued as X )"},
		{"loop", []string{"flags=D", "argv=/bin/cat"}, "Delivered-To: ann+tag@example.com\n\nx\n", mailbox.Bounced, "5.4.6", "mail forwarding loop for Ann+Tag@Example.COM"},
		{"too big", []string{"size=5", "argv=/bin/cat"}, "123456\n", mailbox.Bounced, "5.2.3", "message too large"},
		{"null sender", []string{"null_sender=", "argv=/bin/sh", "-c", `test -z "$$1" || exit 1; cat > ` + filepath.Join(dir, "ns"), "sh", "${sender}"}, "x\n", mailbox.Sent, "2.0.0", "delivered via filter service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := newAgent(t, tt.args...).Deliver(context.Background(), delivery(tt.body))
			if res.Status != tt.status || res.DSN != tt.dsn || res.Reply != tt.reply {
				t.Errorf("got %v %s %q; want %v %s %q", res.Status, res.DSN, res.Reply, tt.status, tt.dsn, tt.reply)
			}
			if tt.name == "relayed with output" && res.Action != "relayed" {
				t.Errorf("action %q, want relayed without the X flag", res.Action)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	lookupRoot := func(string) (*user.User, error) { return &user.User{Uid: "0", Gid: "0", Username: "root"}, nil }
	if _, err := New(Options{Service: "s", User: "root", Argv: []string{"/bin/true"}}, lookupRoot, nil); err == nil ||
		!strings.Contains(err.Error(), "root privileges") {
		t.Errorf("root accepted: %v", err)
	}
	lookupUser := func(string) (*user.User, error) { return &user.User{Uid: "1000", Gid: "1000"}, nil }
	for _, o := range []Options{
		{Service: "s", User: "u", Argv: []string{"/bin/echo", "${nope}"}},
		{Service: "s", User: "u", Flags: "Z", Argv: []string{"/bin/true"}},
		{Service: "s", User: "u"},
		{Service: "", User: "u", Argv: []string{"/bin/true"}},
	} {
		if _, err := New(o, lookupUser, nil); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	lookupGroup := func(string) (*user.Group, error) { return &user.Group{Gid: "2000"}, nil }
	a, err := New(Options{Service: "s", User: "u:g", Argv: []string{"/bin/true"}}, lookupUser, lookupGroup)
	if err != nil || a.runAs.GID != 2000 || a.runAs.UID != 1000 {
		t.Errorf("user:group: %+v %v", a, err)
	}
}

func TestQuoteFlag(t *testing.T) {
	a := &Agent{flags: flagSet{quote: true}}
	if got := a.address("a b@example.com"); got != `"a b"@example.com` {
		t.Errorf("q flag: %q", got)
	}
	a = &Agent{flags: flagSet{foldHost: true}}
	if got := a.address("Ann@EXAMPLE.com"); got != "Ann@example.com" {
		t.Errorf("h flag: %q", got)
	}
}
