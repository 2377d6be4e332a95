package virtual

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

// mapTable is a hash:-style table; static answers every key.
type mapTable struct {
	name   string
	m      map[string]string
	static *string
	err    error
}

func (t mapTable) Lookup(key string) (string, bool, error) {
	if t.err != nil {
		return "", false, t.err
	}
	if t.static != nil {
		return *t.static, true, nil
	}
	v, ok := t.m[key]
	return v, ok, nil
}

func (t mapTable) Name() string { return t.name }

func static(v string) mapTable { return mapTable{name: "static:" + v, static: &v} }

type setup struct {
	base     string
	uid, gid int
}

func newSetup(t *testing.T) setup {
	t.Helper()
	s := setup{uid: os.Geteuid(), gid: os.Getegid()}
	if s.uid == 0 {
		s.uid, s.gid = 5000, 5000 // no passwd entry needed for virtual users
	}
	base := t.TempDir()
	for d := base; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	s.base = filepath.Join(base, "vmail")
	os.Mkdir(s.base, 0o755)
	os.Chown(s.base, s.uid, s.gid)
	return s
}

func (s setup) agent(t *testing.T, mailboxes map[string]string, uids mapTable) *Agent {
	t.Helper()
	a, err := New(Options{
		MailboxBase:        s.base,
		MailboxMaps:        mapTable{name: "hash:/etc/postfix/vmailbox", m: mailboxes},
		UIDMaps:            uids,
		GIDMaps:            static(strconv.Itoa(s.gid)),
		MinimumUID:         100,
		Hostname:           "mx.example.com",
		RecipientDelimiter: "+",
		MailboxLock:        mailbox.LockOptions{Attempts: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func delivery(rcpt string) *Delivery {
	return &Delivery{
		QueueID: "4ABC", Sender: "joe@example.org", Recipient: rcpt, OrigRecipient: rcpt,
		Body: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("Subject: x\n\nFrom me\n")), nil },
	}
}

func ownedBy(t *testing.T, path string, uid, gid int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, sys.Uid, sys.Gid, uid, gid)
	}
}

func TestDeliver(t *testing.T) {
	s := newSetup(t)
	boxes := map[string]string{
		"info@example.com":  "example.com/info/",
		"sales@example.com": "example.com/sales",
		"@example.net":      "example.net/catchall/",
	}
	a := s.agent(t, boxes, static(strconv.Itoa(s.uid)))
	ctx := context.Background()

	res := a.Deliver(ctx, delivery("Info+news@Example.com"))
	if res.Status != mailbox.Sent || res.Reply != "delivered to maildir" || res.Relay != "virtual" {
		t.Fatalf("maildir: %+v", res)
	}
	ents, _ := os.ReadDir(filepath.Join(s.base, "example.com/info/new"))
	if len(ents) != 1 {
		t.Fatalf("maildir new/ has %d files", len(ents))
	}
	ownedBy(t, filepath.Join(s.base, "example.com/info/new", ents[0].Name()), s.uid, s.gid)
	ownedBy(t, filepath.Join(s.base, "example.com"), s.uid, s.gid)

	res = a.Deliver(ctx, delivery("sales@example.com"))
	if res.Status != mailbox.Sent || res.Reply != "delivered to mailbox" {
		t.Fatalf("mbox: %+v", res)
	}
	data, _ := os.ReadFile(filepath.Join(s.base, "example.com/sales"))
	if !strings.HasPrefix(string(data), "From joe@example.org  ") ||
		!strings.Contains(string(data), "Delivered-To: sales@example.com\n") || !strings.HasSuffix(string(data), ">From me\n\n") {
		t.Errorf("mbox content %q", data)
	}

	if res = a.Deliver(ctx, delivery("anyone@example.net")); res.Status != mailbox.Sent {
		t.Errorf("catch-all: %+v", res)
	}

	res = a.Deliver(ctx, delivery("nobody@example.com"))
	if res.Status != mailbox.Bounced || res.DSN != "5.1.1" || res.Reply != `unknown user: "nobody@example.com"` {
		t.Errorf("unknown: %+v", res)
	}
}

func TestUIDChecks(t *testing.T) {
	s := newSetup(t)
	boxes := map[string]string{"a@example.com": "a/", "b@example.com": "b/"}
	uids := mapTable{name: "hash:/etc/postfix/vuid", m: map[string]string{"a@example.com": "5"}}
	a := s.agent(t, boxes, uids)

	res := a.Deliver(context.Background(), delivery("a@example.com"))
	if res.Status != mailbox.Deferred || res.Reply != "mail system configuration error" ||
		res.Warning != "recipient a@example.com: bad uid 5 in hash:/etc/postfix/vuid" {
		t.Errorf("low uid: %+v", res)
	}
	res = a.Deliver(context.Background(), delivery("b@example.com"))
	if res.Status != mailbox.Deferred || !strings.Contains(res.Warning, "uid not found in hash:/etc/postfix/vuid") {
		t.Errorf("missing uid: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(s.base, "a")); !os.IsNotExist(err) {
		t.Error("mailbox created despite bad uid")
	}

	broken := s.agent(t, boxes, mapTable{name: "hash:/broken", err: errors.New("corrupt")})
	if res := broken.Deliver(context.Background(), delivery("a@example.com")); res.Status != mailbox.Deferred || res.DSN != "4.3.0" {
		t.Errorf("table failure: %+v", res)
	}
}

func TestBadMailboxPath(t *testing.T) {
	s := newSetup(t)
	for _, p := range []string{"../escape/", "/abs/", "a/../../b"} {
		a := s.agent(t, map[string]string{"x@example.com": p}, static(strconv.Itoa(s.uid)))
		if res := a.Deliver(context.Background(), delivery("x@example.com")); res.Status != mailbox.Deferred || res.Warning == "" {
			t.Errorf("%q: %+v", p, res)
		}
	}
}

func TestLoop(t *testing.T) {
	s := newSetup(t)
	a := s.agent(t, map[string]string{"x@example.com": "x/"}, static(strconv.Itoa(s.uid)))
	d := delivery("x@example.com")
	d.Body = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Delivered-To: x@example.com\n\nbody\n")), nil
	}
	if res := a.Deliver(context.Background(), d); res.Status != mailbox.Bounced || res.DSN != "5.4.6" {
		t.Errorf("got %+v", res)
	}
}

func TestSearchKeys(t *testing.T) {
	tests := []struct{ rcpt, delim, want string }{
		{"a+b@x.org", "+", "a+b@x.org @ a@x.org @ @x.org"},
		{"a@x.org", "+", "a@x.org @ @x.org"},
		{"a+b@x.org", "", "a+b@x.org @ @x.org"},
		{"local", "+", "local"},
	}
	for _, tt := range tests {
		if got := strings.Join(searchKeys(tt.rcpt, tt.delim), " @ "); got != tt.want {
			t.Errorf("searchKeys(%q) = %q, want %q", tt.rcpt, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{MailboxBase: "rel"}); err == nil {
		t.Error("relative base accepted")
	}
	if _, err := New(Options{MailboxBase: "/x"}); err == nil {
		t.Error("missing maps accepted")
	}
}
