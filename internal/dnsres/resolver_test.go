package dnsres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone is a tiny authoritative data set for the test server.
type zone struct {
	records  map[string][]dns.RR // key: "name./TYPE"
	servfail map[string]bool     // names answered with SERVFAIL
	truncUDP map[string]bool     // names whose UDP answer is truncated
	exists   map[string]bool     // names that exist (others are NXDOMAIN)
	adBit    atomic.Bool

	tcpQueries atomic.Int32
	queries    atomic.Int32
}

func newZone(t *testing.T, rrs ...string) *zone {
	t.Helper()
	z := &zone{records: map[string][]dns.RR{}, servfail: map[string]bool{},
		truncUDP: map[string]bool{}, exists: map[string]bool{}}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test RR %q: %v", s, err)
		}
		h := rr.Header()
		key := strings.ToLower(h.Name) + "/" + dns.TypeToString[h.Rrtype]
		z.records[key] = append(z.records[key], rr)
		z.exists[strings.ToLower(h.Name)] = true
	}
	return z
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.queries.Add(1)
	if w.LocalAddr().Network() == "tcp" {
		z.tcpQueries.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.AuthenticatedData = z.adBit.Load()
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case z.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	case z.truncUDP[name] && w.LocalAddr().Network() == "udp":
		m.Truncated = true
	default:
		// Answer like a recursive server: the CNAME chain then the data.
		for hops := 0; hops < 20; hops++ {
			if c, ok := z.records[name+"/CNAME"]; ok && q.Qtype != dns.TypeCNAME {
				m.Answer = append(m.Answer, c...)
				name = strings.ToLower(c[0].(*dns.CNAME).Target)
				continue
			}
			break
		}
		m.Answer = append(m.Answer, z.records[name+"/"+dns.TypeToString[q.Qtype]]...)
		if len(m.Answer) == 0 && !z.exists[name] {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

// startServer runs the zone on 127.0.0.1 over UDP and TCP on one port.
func startServer(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		t.Skipf("tcp port %s not free alongside udp: %v", addr, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the Shutdowns registered below (LIFO)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return addr
}

func testResolver(t *testing.T, z dns.Handler, opts ...Option) *Resolver {
	t.Helper()
	r, err := New([]string{startServer(t, z)}, 2*time.Second, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLookupMXOrdering(t *testing.T) {
	z := newZone(t,
		"example.test. 300 IN MX 20 mx2.example.test.",
		"example.test. 300 IN MX 10 MX1.example.test.",
		"example.test. 300 IN MX 30 mx3.example.test.",
	)
	r := testResolver(t, z)
	mxs, err := r.LookupMX(context.Background(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []MX{{"mx1.example.test", 10}, {"mx2.example.test", 20}, {"mx3.example.test", 30}}
	if len(mxs) != len(want) {
		t.Fatalf("got %v, want %v", mxs, want)
	}
	for i := range want {
		if mxs[i] != want[i] {
			t.Fatalf("got %v, want %v", mxs, want)
		}
	}
}

func TestLookupMXEqualPreferenceShuffled(t *testing.T) {
	z := newZone(t,
		"example.test. 300 IN MX 10 a.example.test.",
		"example.test. 300 IN MX 10 b.example.test.",
		"example.test. 300 IN MX 10 c.example.test.",
		"example.test. 300 IN MX 5 first.example.test.",
		"example.test. 300 IN MX 50 last.example.test.",
	)
	r := testResolver(t, z, WithRand(rand.New(rand.NewPCG(1, 2))))
	orders := map[string]bool{}
	for i := 0; i < 30; i++ {
		mxs, err := r.LookupMX(context.Background(), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(mxs) != 5 || mxs[0].Host != "first.example.test" || mxs[4].Host != "last.example.test" {
			t.Fatalf("preference order broken: %v", mxs)
		}
		orders[mxs[1].Host+","+mxs[2].Host+","+mxs[3].Host] = true
	}
	if len(orders) < 2 {
		t.Fatalf("equal-preference hosts were never reordered: %v", orders)
	}
}

func TestLookupMXNoMXFallsBackToA(t *testing.T) {
	z := newZone(t, "nomx.test. 300 IN A 192.0.2.7")
	r := testResolver(t, z)
	_, err := r.LookupMX(context.Background(), "nomx.test")
	if !IsNotFound(err) || IsTemporary(err) || IsNXDomain(err) {
		t.Fatalf("want NODATA, got %v", err)
	}
	addrs, err := r.LookupHost(context.Background(), "nomx.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0] != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("got %v", addrs)
	}
}

func TestLookupMXNull(t *testing.T) {
	z := newZone(t, "null.test. 300 IN MX 0 .")
	r := testResolver(t, z)
	_, err := r.LookupMX(context.Background(), "null.test")
	if !errors.Is(err, ErrNullMX) {
		t.Fatalf("want ErrNullMX, got %v", err)
	}
	if IsNotFound(err) || IsTemporary(err) {
		t.Fatalf("null MX must be neither not-found nor temporary: %v", err)
	}
}

func TestLookupServfailIsTemporary(t *testing.T) {
	z := newZone(t)
	z.servfail["broken.test."] = true
	r := testResolver(t, z, WithAttempts(2))
	_, err := r.LookupMX(context.Background(), "broken.test")
	var de *Error
	if !errors.As(err, &de) || de.Kind != ServFail || !IsTemporary(err) || IsNotFound(err) {
		t.Fatalf("want temporary SERVFAIL, got %v", err)
	}
	if de.Name != "broken.test" || de.Type != "MX" {
		t.Fatalf("error lacks name/type: %+v", de)
	}
	if got := z.queries.Load(); got != 2 {
		t.Fatalf("want 2 tries, server saw %d", got)
	}
}

func TestLookupNXDomainIsPermanent(t *testing.T) {
	r := testResolver(t, newZone(t))
	_, err := r.LookupHost(context.Background(), "nowhere.test")
	var de *Error
	if !errors.As(err, &de) || de.Kind != NXDomain || IsTemporary(err) || !IsNotFound(err) {
		t.Fatalf("want permanent NXDOMAIN, got %v", err)
	}
	if de.Type != "A" || de.HostErrorText() != "Host not found" {
		t.Fatalf("got type %s text %q", de.Type, de.HostErrorText())
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	z := newZone(t, "big.test. 300 IN MX 10 mx.big.test.")
	z.truncUDP["big.test."] = true
	r := testResolver(t, z)
	mxs, err := r.LookupMX(context.Background(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(mxs) != 1 || mxs[0].Host != "mx.big.test" {
		t.Fatalf("got %v", mxs)
	}
	if z.tcpQueries.Load() != 1 {
		t.Fatalf("want one TCP query, got %d", z.tcpQueries.Load())
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	// A UDP socket that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := New([]string{pc.LocalAddr().String()}, 100*time.Millisecond, WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.LookupTXT(context.Background(), "slow.test")
	var de *Error
	if !errors.As(err, &de) || de.Kind != Timeout || !IsTemporary(err) {
		t.Fatalf("want timeout, got %v", err)
	}
}

func TestCNAMEChain(t *testing.T) {
	z := newZone(t,
		"alias.test. 300 IN CNAME mid.test.",
		"mid.test. 300 IN CNAME real.test.",
		"real.test. 300 IN A 192.0.2.1",
		"real.test. 300 IN AAAA 2001:db8::1",
		"loop1.test. 300 IN CNAME loop2.test.",
		"loop2.test. 300 IN CNAME loop1.test.",
	)
	r := testResolver(t, z)
	addrs, err := r.LookupHost(context.Background(), "alias.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 2 || addrs[0].String() != "192.0.2.1" || addrs[1].String() != "2001:db8::1" {
		t.Fatalf("got %v", addrs)
	}
	_, err = r.LookupHost(context.Background(), "loop1.test")
	var de *Error
	if !errors.As(err, &de) || de.Kind != Malformed {
		t.Fatalf("want CNAME loop error, got %v", err)
	}
}

func TestLookupHostProtocols(t *testing.T) {
	z := newZone(t,
		"dual.test. 300 IN A 192.0.2.1",
		"dual.test. 300 IN AAAA 2001:db8::1",
	)
	addr := startServer(t, z)
	for _, tc := range []struct {
		proto string
		want  string
	}{
		{"ipv4", "[192.0.2.1]"},
		{"ipv6", "[2001:db8::1]"},
		{"all", "[192.0.2.1 2001:db8::1]"},
		{"ipv6, ipv4", "[192.0.2.1 2001:db8::1]"},
	} {
		p, err := ParseProtocols(tc.proto)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New([]string{addr}, time.Second, WithProtocols(p))
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := r.LookupHost(context.Background(), "dual.test")
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(addrs); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.proto, got, tc.want)
		}
	}
	if _, err := ParseProtocols("ipx"); err == nil {
		t.Error("ParseProtocols accepted ipx")
	}
}

func TestLookupHostLiteral(t *testing.T) {
	r, err := New([]string{"127.0.0.1:1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := r.LookupHost(context.Background(), "192.0.2.9")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "192.0.2.9" {
		t.Fatalf("got %v %v", addrs, err)
	}
}

func TestLookupPTRTXTTLSA(t *testing.T) {
	z := newZone(t,
		"4.3.2.1.in-addr.arpa. 300 IN PTR host.example.test.",
		"example.test. 300 IN TXT \"v=spf1 \" \"-all\"",
		"_25._tcp.mx.example.test. 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	)
	z.adBit.Store(true)
	r := testResolver(t, z)
	ctx := context.Background()
	names, err := r.LookupPTR(ctx, netip.MustParseAddr("1.2.3.4"))
	if err != nil || len(names) != 1 || names[0] != "host.example.test" {
		t.Fatalf("PTR: %v %v", names, err)
	}
	txts, err := r.LookupTXT(ctx, "example.test")
	if err != nil || len(txts) != 1 || txts[0] != "v=spf1 -all" {
		t.Fatalf("TXT: %q %v", txts, err)
	}
	tlsa, ad, err := r.LookupTLSA(ctx, "_25._tcp.mx.example.test")
	if err != nil || len(tlsa) != 1 || !ad || tlsa[0].Usage != 3 {
		t.Fatalf("TLSA: %v %v %v", tlsa, ad, err)
	}
	z.adBit.Store(false)
	if _, ad, err := r.LookupTLSA(ctx, "_25._tcp.mx.example.test"); err != nil || ad {
		t.Fatalf("TLSA without AD: ad=%v err=%v", ad, err)
	}
}

func TestNewServerParsing(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"192.0.2.1", "192.0.2.1:53", false},
		{"192.0.2.1:5353", "192.0.2.1:5353", false},
		{"::1", "[::1]:53", false},
		{"[::1]:5353", "[::1]:5353", false},
		{"ns.example.test", "ns.example.test:53", false},
		{"192.0.2.1:0", "", true},
		{"192.0.2.1:x", "", true},
		{"", "", true},
		{"[::1", "", true},
	} {
		got, err := parseServer(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseServer(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestNewFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.53\noptions timeout:3 attempts:4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newResolver(nil, 0, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Servers(); len(s) != 1 || s[0] != "127.0.0.53:53" || r.timeout != 3*time.Second || r.attempts != 4 {
		t.Fatalf("got servers %v timeout %v attempts %d", s, r.timeout, r.attempts)
	}
	if err := os.WriteFile(path, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newResolver(nil, 0, path, nil); err == nil {
		t.Fatal("accepted resolv.conf without nameservers")
	}
}

func TestInvalidName(t *testing.T) {
	r, err := New([]string{"127.0.0.1:1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.LookupMX(context.Background(), "bad name\r\n.test")
	var de *Error
	if !errors.As(err, &de) || de.Kind != Malformed {
		t.Fatalf("want malformed-name error, got %v", err)
	}
}
