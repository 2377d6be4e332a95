package inbound

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/dnsres"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
	"github.com/yubin-mta/yubin/smtp/policy"
)

// fakeQueue records submissions; submitErr/panicOnSubmit simulate failures.
type fakeQueue struct {
	mu            sync.Mutex
	n             int
	msgs          []*queue.Message
	bodies        [][]byte
	submitErr     error
	panicOnSubmit bool
}

func (q *fakeQueue) NewID() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return "4F2A81C0D4" + string(rune('A'+q.n-1))
}

func (q *fakeQueue) Submit(_ context.Context, m *queue.Message, body []byte) error {
	if q.panicOnSubmit {
		panic("queue exploded")
	}
	if q.submitErr != nil {
		return q.submitErr
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, m)
	q.bodies = append(q.bodies, append([]byte(nil), body...))
	return nil
}

func (q *fakeQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mapTable is a map-based lookup.Table.
type mapTable map[string]string

func (m mapTable) Name() string { return "hash:/etc/postfix/test" }
func (m mapTable) Lookup(k string) (string, bool, error) {
	v, ok := m[k]
	return v, ok, nil
}

// fakeResolver: 127.0.0.1 is localhost, everything else unknown.
type fakeResolver struct{}

func (fakeResolver) LookupPTR(_ context.Context, a netip.Addr) ([]string, error) {
	if a.String() == "127.0.0.1" {
		return []string{"localhost."}, nil
	}
	return nil, &dnsres.Error{Name: a.String(), Type: "PTR", Kind: dnsres.NXDomain}
}

func (fakeResolver) LookupHost(_ context.Context, h string) ([]netip.Addr, error) {
	if h == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &dnsres.Error{Name: h, Type: "A", Kind: dnsres.NXDomain}
}

func (fakeResolver) LookupMX(_ context.Context, d string) ([]dnsres.MX, error) {
	return nil, &dnsres.Error{Name: d, Type: "MX", Kind: dnsres.NoData}
}

var testTime = time.Date(2025, 11, 3, 5, 17, 55, 0, time.FixedZone("JST", 9*3600))

// testPolicy: example.com is local with users alice, bob and "a b";
// mynetworks is 127.0.0.1/32, so 127.0.0.2 is an outside client.
func testPolicy(t testing.TB, mutate func(*policy.Config)) *policy.Checker {
	t.Helper()
	cfg := policy.DefaultConfig()
	nets, err := policy.ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.MyNetworks = nets
	local, err := policy.NewDomainList([]string{"example.com", "mx.example.com"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Env = &policy.TableEnv{
		LocalDomains:       local,
		LocalRecipientMaps: []lookup.Table{mapTable{"alice": "x", "bob": "x", `"a b"`: "x", "postmaster": "x", "held": "x", "gone": "x"}},
	}
	cfg.OpenTable = func(spec string) (lookup.Table, error) {
		if spec == "hash:/etc/postfix/recipient_access" {
			return mapTable{"held@example.com": "HOLD", "gone@example.com": "DISCARD"}, nil
		}
		return nil, errors.New("no such table")
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := policy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type testServer struct {
	srv  *Server
	q    *fakeQueue
	log  *syncBuffer
	addr string
	done chan error
}

func startServer(t testing.TB, mutate func(*Settings)) *testServer {
	t.Helper()
	ts := &testServer{q: &fakeQueue{}, log: &syncBuffer{}, done: make(chan error, 1)}
	logger := maillog.New(ts.log, "postfix", "mx.example.com")
	logger.SetClock(func() time.Time { return testTime })
	s := Settings{
		Hostname:       "mx.example.com",
		Banner:         "mx.example.com ESMTP yubin",
		Log:            logger,
		Resolver:       fakeResolver{},
		Policy:         testPolicy(t, nil),
		Now:            func() time.Time { return testTime },
		ErrorSleepTime: -1,
		Timeout:        10 * time.Second,
	}
	if mutate != nil {
		mutate(&s)
	}
	ts.srv = NewServer(s, ts.q)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.done <- ts.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ts
}

// waitLog waits until the log contains s (log lines are written just
// after the replies the test has already read).
func (ts *testServer) waitLog(t testing.TB, s string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := ts.log.String(); strings.Contains(l, s) {
			return l
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("log lacks %q:\n%s", s, ts.log.String())
	return ""
}

// client is a raw SMTP client.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	return dialFrom(t, addr, "")
}

func dialFrom(t testing.TB, addr, local string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// reply reads one reply, all lines joined by "\n".
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply after %q: %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// cmd sends one command line and returns the reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// closed reports whether the server closed the connection (reading all
// remaining replies).
func (c *client) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadString('\n')
	for err == nil {
		_, err = c.r.ReadString('\n')
	}
	return !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
