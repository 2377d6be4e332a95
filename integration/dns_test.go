package integration

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsZone is an in-process authoritative DNS server on a loopback UDP port,
// so MX-based delivery can be tested without touching the real DNS. Names
// it knows answer NOERROR (with an empty answer for missing types); other
// names answer NXDOMAIN, as a real authority would.
type dnsZone struct {
	Addr string // 127.0.0.1:port, for dns_servers

	mu      sync.Mutex
	records map[string][]dns.RR // lower-case FQDN -> records
	queries map[string]int      // "name TYPE" -> count
}

// newDNSZone starts the server with records in zone-file syntax, one per
// string (e.g. "example.test. 60 IN MX 10 mx1.example.test."), and stops it
// when the test ends.
func newDNSZone(t *testing.T, rrs ...string) *dnsZone {
	t.Helper()
	z := &dnsZone{records: map[string][]dns.RR{}, queries: map[string]int{}}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("dns record %q: %v", s, err)
		}
		name := strings.ToLower(rr.Header().Name)
		z.records[name] = append(z.records[name], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.Addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("dns server did not start")
	}
	t.Cleanup(func() { srv.Shutdown() })
	return z
}

// ServeDNS answers from the records map (dns.Handler).
func (z *dnsZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.Lock()
	z.queries[strings.TrimSuffix(name, ".")+" "+dns.TypeToString[q.Qtype]]++
	rrs, known := z.records[name]
	z.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	w.WriteMsg(m)
}

// Queries returns how often "name TYPE" (e.g. "example.test MX") was asked.
func (z *dnsZone) Queries(key string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[key]
}
