package local

import (
	"context"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

const message = "Subject: hello\r\nFrom: joe@example.com\r\n\r\nFrom the start\r\nbye\r\n"

// fixture is a spool and a home directory for a test user: "nobody" when
// running as root (so ownership and privilege changes are real), else the
// current user.
type fixture struct {
	spool, home string
	u           *user.User
	uid, gid    int
	root        bool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: os.Geteuid() == 0}
	var err error
	if f.root {
		f.u, err = user.Lookup("nobody")
		if err != nil {
			t.Skipf("no user nobody: %v", err)
		}
	} else if f.u, err = user.Current(); err != nil {
		t.Skip(err)
	}
	f.uid, _ = strconv.Atoi(f.u.Uid)
	f.gid, _ = strconv.Atoi(f.u.Gid)
	base := t.TempDir()
	for d := base; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	f.spool = filepath.Join(base, "spool")
	f.home = filepath.Join(base, "home")
	os.Mkdir(f.spool, 0o1777)
	os.Chmod(f.spool, 0o1777)
	os.Mkdir(f.home, 0o755)
	os.Chown(f.home, f.uid, f.gid)
	return f
}

// lookup knows the fixture user as "ann" (and by its real name, for
// default_privs) and nobody else.
func (f *fixture) lookup(name string) (*user.User, error) {
	if name == "ann" || name == f.u.Username {
		u := *f.u
		u.Username = name
		u.HomeDir = f.home
		return &u, nil
	}
	return nil, user.UnknownUserError(name)
}

func (f *fixture) agent(t *testing.T, opts Options) *Agent {
	t.Helper()
	opts.MailSpoolDirectory = f.spool + strings.TrimPrefix(opts.MailSpoolDirectory, "SPOOL")
	opts.LookupUser = f.lookup
	opts.LookupShell = func(string) string { return "/bin/sh" }
	opts.Hostname = "mx.example.com"
	opts.DefaultPrivs = f.u.Username
	opts.MailboxLock = mailbox.LockOptions{Attempts: 2, Delay: 10 * time.Millisecond}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func delivery(rcpt, target string) *Delivery {
	return &Delivery{
		QueueID: "4ABCDEF", Sender: "joe@example.com", Recipient: rcpt, OrigRecipient: "info@example.com",
		Target: target,
		Body:   func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(message)), nil },
	}
}

func (f *fixture) checkOwner(t *testing.T, path string, modeCheck ...bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if f.root && (int(sys.Uid) != f.uid || int(sys.Gid) != f.gid) {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, sys.Uid, sys.Gid, f.uid, f.gid)
	}
	if len(modeCheck) == 0 && st.Mode().IsRegular() && st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
	}
}

func TestDeliverSpoolMbox(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{})
	res := a.Deliver(context.Background(), delivery("Ann@example.com", ""))
	if res.Status != mailbox.Sent || res.Reply != "delivered to mailbox" || res.DSN != "2.0.0" || res.Relay != "local" {
		t.Fatalf("got %+v", res)
	}
	path := filepath.Join(f.spool, "ann")
	got, _ := os.ReadFile(path)
	lines := strings.SplitN(string(got), "\n", 2)
	if !strings.HasPrefix(lines[0], "From joe@example.com  ") || len(lines[0]) != len("From joe@example.com  Mon Jan  2 15:04:05 2006") {
		t.Errorf("From_ line %q", lines[0])
	}
	wantRest := "Return-Path: <joe@example.com>\nX-Original-To: info@example.com\nDelivered-To: Ann@example.com\n" +
		"Subject: hello\nFrom: joe@example.com\n\n>From the start\nbye\n\n"
	if lines[1] != wantRest {
		t.Errorf("mailbox body\n%q\nwant\n%q", lines[1], wantRest)
	}
	f.checkOwner(t, path)
}

func TestDeliverHomeMaildir(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{HomeMailbox: "Maildir/"})
	res := a.Deliver(context.Background(), delivery("ann@example.com", ""))
	if res.Status != mailbox.Sent || res.Reply != "delivered to maildir" {
		t.Fatalf("got %+v", res)
	}
	ents, err := os.ReadDir(filepath.Join(f.home, "Maildir", "new"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("new/: %v %v", ents, err)
	}
	p := filepath.Join(f.home, "Maildir", "new", ents[0].Name())
	got, _ := os.ReadFile(p)
	want := "Return-Path: <joe@example.com>\nX-Original-To: info@example.com\nDelivered-To: ann@example.com\n" +
		"Subject: hello\nFrom: joe@example.com\n\nFrom the start\nbye\n"
	if string(got) != want {
		t.Errorf("maildir file %q, want %q", got, want)
	}
	f.checkOwner(t, p)
	f.checkOwner(t, filepath.Join(f.home, "Maildir", "cur"))
}

func TestDeliverHomeMbox(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{HomeMailbox: "Mailbox"})
	if res := a.Deliver(context.Background(), delivery("ann@example.com", "")); res.Status != mailbox.Sent {
		t.Fatalf("got %+v", res)
	}
	f.checkOwner(t, filepath.Join(f.home, "Mailbox"))
}

func TestUnknownUser(t *testing.T) {
	f := newFixture(t)
	res := f.agent(t, Options{}).Deliver(context.Background(), delivery("bob+tag@example.com", ""))
	if res.Status != mailbox.Bounced || res.DSN != "5.1.1" || res.Reply != `unknown user: "bob+tag"` {
		t.Errorf("got %+v", res)
	}
	// With a delimiter the bare name is looked up.
	res = f.agent(t, Options{RecipientDelimiter: "+"}).Deliver(context.Background(), delivery("ann+tag@example.com", ""))
	if res.Status != mailbox.Sent {
		t.Errorf("ann+tag: %+v", res)
	}
}

func TestLoopDetection(t *testing.T) {
	f := newFixture(t)
	d := delivery("ann@example.com", "")
	d.Body = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Delivered-To: ANN@example.com\r\n" + message)), nil
	}
	res := f.agent(t, Options{}).Deliver(context.Background(), d)
	if res.Status != mailbox.Bounced || res.DSN != "5.4.6" || res.Reply != "mail forwarding loop for ann@example.com" {
		t.Errorf("got %+v", res)
	}
	if _, err := os.Stat(filepath.Join(f.spool, "ann")); !os.IsNotExist(err) {
		t.Error("looping message was delivered")
	}
}

// TestCommandEnvironment runs an alias "|command" that writes its
// environment and input to a file.
func TestCommandEnvironment(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.home, "env.out")
	a := f.agent(t, Options{RecipientDelimiter: "+"})
	d := delivery("ann+lists@Example.com", "|env > "+out+"; echo ---; cat >> "+out)
	d.AliasOwner = "ann"
	d.AliasOwnerID = &mailbox.Owner{UID: f.uid, GID: f.gid}
	res := a.Deliver(context.Background(), d)
	if res.Status != mailbox.Sent || res.Reply != "delivered to command: env > "+out+"; echo ---; cat >> "+out {
		t.Fatalf("got %+v", res)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	text := string(data)
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(k, " ") {
			env[k] = v
		}
	}
	want := map[string]string{
		"HOME": f.home, "LOGNAME": "ann", "USER": "ann", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin",
		"LOCAL": "ann+lists", "DOMAIN": "Example.com", "EXTENSION": "lists",
		"RECIPIENT": "ann+lists@Example.com", "SENDER": "joe@example.com", "ORIGINAL_RECIPIENT": "info@example.com",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("$%s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.Contains(text, "From joe@example.com  ") || !strings.Contains(text, "Delivered-To: ann+lists@Example.com\nSubject: hello\n") ||
		!strings.HasSuffix(text, "\nFrom the start\nbye\n") {
		t.Errorf("command input wrong:\n%s", text)
	}
	f.checkOwner(t, out, false) // the command's own file: its umask decides the mode
}

func TestCommandTempfail(t *testing.T) {
	f := newFixture(t)
	d := delivery("ann@example.com", "|echo try later; exit 75")
	res := f.agent(t, Options{}).Deliver(context.Background(), d)
	if res.Status != mailbox.Deferred || res.DSN != "4.3.0" || res.Reply != "temporary failure. Command output: try later " {
		t.Errorf("got %+v", res)
	}
	d = delivery("ann@example.com", "|exit 3")
	res = f.agent(t, Options{}).Deliver(context.Background(), d)
	if res.Status != mailbox.Bounced || res.Reply != `Command died with status 3: "exit 3"` {
		t.Errorf("got %+v", res)
	}
}

func TestMailboxCommand(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.home, "mc.out")
	a := f.agent(t, Options{MailboxCommand: "cat > " + out})
	res := a.Deliver(context.Background(), delivery("ann@example.com", ""))
	if res.Status != mailbox.Sent || res.Reply != "delivered to command: cat > "+out {
		t.Fatalf("got %+v", res)
	}
	f.checkOwner(t, out, false)
}

func TestCommandTimeLimit(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{CommandTimeout: 200 * time.Millisecond})
	res := a.Deliver(context.Background(), delivery("ann@example.com", "|sleep 20"))
	if res.Status != mailbox.Deferred || !strings.HasPrefix(res.Reply, "Command time limit exceeded") {
		t.Errorf("got %+v", res)
	}
}

func TestRestrictions(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{AllowMailToCommands: "alias", AllowMailToFiles: "alias"})
	d := delivery("ann@example.com", "|cat")
	d.TargetClass = "forward"
	if res := a.Deliver(context.Background(), d); res.Status != mailbox.Bounced || res.DSN != "5.7.1" || res.Reply != "mail to command is restricted" {
		t.Errorf("command: %+v", res)
	}
	d = delivery("ann@example.com", "/tmp/x")
	d.TargetClass = "include"
	if res := a.Deliver(context.Background(), d); res.Status != mailbox.Bounced || res.Reply != "mail to file is restricted" {
		t.Errorf("file: %+v", res)
	}
	if _, err := New(Options{AllowMailToFiles: "alias, bogus"}); err == nil {
		t.Error("bad class accepted")
	}
}

func TestFileDelivery(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{})
	path := filepath.Join(f.home, "archive")
	d := delivery("ann@example.com", path)
	d.TargetClass = "forward"
	res := a.Deliver(context.Background(), d)
	if res.Status != mailbox.Sent || res.Reply != "delivered to file: "+path {
		t.Fatalf("got %+v", res)
	}
	got, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(got), "From joe@example.com  ") || !strings.HasSuffix(string(got), ">From the start\nbye\n\n") {
		t.Errorf("file content %q", got)
	}
	f.checkOwner(t, path)

	d = delivery("ann@example.com", filepath.Join(f.home, "md")+"/")
	if res := a.Deliver(context.Background(), d); res.Status != mailbox.Sent || res.Reply != "delivered to maildir" {
		t.Errorf("maildir file target: %+v", res)
	}
	if f.root {
		// The user may not write into root's directories: bounce 5.2.0.
		rootDir := filepath.Join(filepath.Dir(f.home), "rootonly")
		os.Mkdir(rootDir, 0o755)
		forbidden := filepath.Join(rootDir, "archive")
		d = delivery("ann@example.com", forbidden)
		d.TargetClass = "forward"
		res := a.Deliver(context.Background(), d)
		if res.Status != mailbox.Bounced || res.DSN != "5.2.0" || !strings.HasPrefix(res.Reply, "cannot append message to file "+forbidden+": ") {
			t.Errorf("file in root's directory: %+v", res)
		}
		if _, err := os.Stat(forbidden); err == nil {
			t.Error("file created in root's directory with the user's rights")
		}
	}
}

func TestInvalidRequest(t *testing.T) {
	f := newFixture(t)
	a := f.agent(t, Options{})
	for _, d := range []*Delivery{nil, {Recipient: "ann@x"}, {Recipient: "a\nb@x", Body: delivery("", "").Body}} {
		if res := a.Deliver(context.Background(), d); res.Status != mailbox.Deferred || res.DSN != "4.3.0" {
			t.Errorf("%+v: got %+v", d, res)
		}
	}
	if _, err := New(Options{HomeMailbox: "/abs"}); err == nil {
		t.Error("absolute home_mailbox accepted")
	}
}
