package outbound

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeServer is a scripted SMTP server on loopback that records what it
// receives byte for byte.
type fakeServer struct {
	t    *testing.T
	ln   net.Listener
	port int

	// Script; set before the first connection.
	greeting  string   // "220 ..." (may be multi-line with \n)
	exts      []string // EHLO keywords
	mailReply string
	rcptReply func(addr string) string
	dataReply string
	dotReply  string
	hangAtDot bool // never answer the final dot
	tlsConfig *tls.Config

	mu       sync.Mutex
	ahead    []int // bytes already received after each MAIL FROM line
	conns    int
	open     map[net.Conn]bool
	messages [][]byte
	commands []string
	tlsSeen  bool
	wg       sync.WaitGroup
}

// newFakeServer starts a server on ip; script functions adjust the
// defaults before the first connection can arrive.
func newFakeServer(t *testing.T, ip string, script ...func(*fakeServer)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return startFake(t, ln, script...)
}

func startFake(t *testing.T, ln net.Listener, script ...func(*fakeServer)) *fakeServer {
	s := &fakeServer{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port,
		greeting: "220 fake.test ESMTP", exts: []string{"PIPELINING", "8BITMIME"},
		mailReply: "250 2.1.0 Ok", dataReply: "354 End data with <CR><LF>.<CR><LF>",
		dotReply: "250 2.0.0 Ok: queued as ABC", open: map[net.Conn]bool{}}
	s.rcptReply = func(string) string { return "250 2.1.5 Ok" }
	for _, f := range script {
		f(s)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.open[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

func (s *fakeServer) log(cmd string) {
	s.mu.Lock()
	s.commands = append(s.commands, cmd)
	s.mu.Unlock()
}

func writeReply(w io.Writer, reply string) error {
	_, err := io.WriteString(w, strings.ReplaceAll(reply, "\n", "\r\n")+"\r\n")
	return err
}

func (s *fakeServer) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if writeReply(c, s.greeting) != nil || !strings.HasPrefix(s.greeting, "2") {
		// Stay for the client's QUIT, like a real server after 554.
		if strings.HasPrefix(s.greeting, "5") {
			s.drain(bufio.NewReader(c), c)
		}
		return
	}
	r := bufio.NewReader(c)
	var w io.Writer = c
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		s.log(cmd)
		if strings.HasPrefix(strings.ToUpper(cmd), "MAIL FROM:") {
			s.mu.Lock()
			s.ahead = append(s.ahead, r.Buffered())
			s.mu.Unlock()
		}
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		if i := strings.IndexByte(verb, ':'); i >= 0 {
			verb = verb[:i]
		}
		var reply string
		switch verb {
		case "EHLO", "LHLO":
			lines := []string{"250-fake.test"}
			for _, e := range s.exts {
				if e == "STARTTLS" && s.tlsSeenOn(c) {
					continue
				}
				lines = append(lines, "250-"+e)
			}
			lines[len(lines)-1] = "250 " + strings.TrimPrefix(lines[len(lines)-1], "250-")
			reply = strings.Join(lines, "\n")
		case "HELO", "NOOP", "RSET":
			reply = "250 2.0.0 Ok"
		case "STARTTLS":
			if err := writeReply(w, "220 2.0.0 Ready to start TLS"); err != nil {
				return
			}
			tc := tls.Server(c, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			s.mu.Lock()
			s.tlsSeen = true
			s.mu.Unlock()
			c = &tlsMarked{tc}
			r, w = bufio.NewReader(tc), tc
			continue
		case "MAIL":
			reply = s.mailReply
		case "RCPT":
			addr := cmd[strings.IndexByte(cmd, '<')+1 : strings.IndexByte(cmd, '>')]
			reply = s.rcptReply(addr)
		case "DATA":
			if err := writeReply(w, s.dataReply); err != nil || !strings.HasPrefix(s.dataReply, "354") {
				if err != nil {
					return
				}
				continue
			}
			var msg bytes.Buffer
			for !bytes.HasSuffix(msg.Bytes(), []byte("\r\n.\r\n")) && !bytes.Equal(msg.Bytes(), []byte(".\r\n")) {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				msg.WriteByte(b)
			}
			s.mu.Lock()
			s.messages = append(s.messages, msg.Bytes())
			s.mu.Unlock()
			if s.hangAtDot {
				s.drain(r, c)
				return
			}
			reply = s.dotReply
		case "QUIT":
			_ = writeReply(w, "221 2.0.0 Bye")
			return
		default:
			reply = "502 5.5.2 Error: command not recognized"
		}
		if err := writeReply(w, reply); err != nil {
			return
		}
		if strings.HasPrefix(reply, "421") {
			return
		}
	}
}

// tlsMarked marks a connection that switched to TLS.
type tlsMarked struct{ *tls.Conn }

func (s *fakeServer) tlsSeenOn(c net.Conn) bool { _, ok := c.(*tlsMarked); return ok }

// drain reads until the peer closes or the deadline passes.
func (s *fakeServer) drain(r *bufio.Reader, c net.Conn) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(strings.ToUpper(line), "QUIT") {
			_ = writeReply(c, "221 2.0.0 Bye")
			return
		}
	}
}

func (s *fakeServer) snapshot() (conns int, msgs [][]byte, cmds []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([][]byte(nil), s.messages...), append([]string(nil), s.commands...)
}

func (s *fakeServer) nexthop() string { return "[127.0.0.1]:" + strconv.Itoa(s.port) }

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// testDNS serves records given as zone-file lines on 127.0.0.1 (UDP+TCP).
type testDNS struct {
	mu       sync.Mutex
	records  map[string][]dns.RR
	exists   map[string]bool
	servfail map[string]bool
}

func startDNS(t *testing.T, rrs ...string) (string, *testDNS) {
	t.Helper()
	z := &testDNS{records: map[string][]dns.RR{}, exists: map[string]bool{}, servfail: map[string]bool{}}
	for _, line := range rrs {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("bad RR %q: %v", line, err)
		}
		key := strings.ToLower(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype]
		z.records[key] = append(z.records[key], rr)
		z.exists[strings.ToLower(rr.Header().Name)] = true
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: z}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return pc.LocalAddr().String(), z
}

func (z *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.Lock()
	defer z.mu.Unlock()
	switch {
	case z.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Answer = z.records[name+"/"+dns.TypeToString[q.Qtype]]
		if len(m.Answer) == 0 && !z.exists[name] {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

func (z *testDNS) setServfail(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.servfail[name] = true
}

func body(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func rcpts(addrs ...string) []Recipient {
	out := make([]Recipient, len(addrs))
	for i, a := range addrs {
		out[i] = Recipient{Addr: a}
	}
	return out
}

func mustClient(t *testing.T, o Options) *Client {
	t.Helper()
	if o.HeloName == "" {
		o.HeloName = "client.test"
	}
	for _, d := range []*time.Duration{&o.ConnectTimeout, &o.HeloTimeout, &o.MailTimeout, &o.RcptTimeout,
		&o.DataInitTimeout, &o.DataXferTimeout, &o.DataDoneTimeout, &o.QuitTimeout, &o.RsetTimeout} {
		if *d == 0 {
			*d = 5 * time.Second
		}
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func checkResult(t *testing.T, got Result, status Status, dsn, reply string) {
	t.Helper()
	if got.Status != status || got.DSN != dsn || got.Reply != reply {
		t.Errorf("%s: got %v %s %q\n                want %v %s %q", got.Addr, got.Status, got.DSN, got.Reply, status, dsn, reply)
	}
}
