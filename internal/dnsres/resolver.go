package dnsres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// DefaultResolvConf is read when no servers are configured.
	DefaultResolvConf = "/etc/resolv.conf"
	defaultTimeout    = 5 * time.Second
	defaultAttempts   = 2
	maxAttempts       = 10
	// maxCNAMEHops bounds CNAME chains (as Postfix and most resolvers do).
	maxCNAMEHops = 8
	// udpBufSize is the EDNS0 buffer size advertised (DNS flag day 2020).
	udpBufSize = 1232
)

// Protocols selects the address families LookupHost returns, like Postfix's
// inet_protocols parameter.
type Protocols int

// Address families.
const (
	ProtocolsAll Protocols = iota
	ProtocolsIPv4
	ProtocolsIPv6
)

// ParseProtocols parses an inet_protocols value: "all", "ipv4", "ipv6" or
// "ipv4, ipv6" (either order).
func ParseProtocols(s string) (Protocols, error) {
	var v4, v6 bool
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t'
	}) {
		switch f {
		case "all":
			v4, v6 = true, true
		case "ipv4":
			v4 = true
		case "ipv6":
			v6 = true
		default:
			return 0, fmt.Errorf("inet_protocols: unknown protocol %q (want all, ipv4 or ipv6)", f)
		}
	}
	switch {
	case v4 && v6:
		return ProtocolsAll, nil
	case v4:
		return ProtocolsIPv4, nil
	case v6:
		return ProtocolsIPv6, nil
	}
	return 0, fmt.Errorf("inet_protocols: empty value %q", s)
}

// MX is one mail exchanger of a domain.
type MX struct {
	Host string // lower case, without the trailing dot
	Pref uint16
}

// Resolver sends queries to a fixed list of name servers. It is safe for
// concurrent use.
type Resolver struct {
	servers   []string // host:port
	timeout   time.Duration
	attempts  int
	protocols Protocols

	udp *dns.Client
	tcp *dns.Client

	randMu sync.Mutex
	rand   *rand.Rand // nil: use the global source
}

// Option adjusts a Resolver built by New.
type Option func(*Resolver) error

// WithProtocols restricts LookupHost to the given address families.
func WithProtocols(p Protocols) Option {
	return func(r *Resolver) error {
		if p < ProtocolsAll || p > ProtocolsIPv6 {
			return fmt.Errorf("invalid protocols value %d", p)
		}
		r.protocols = p
		return nil
	}
}

// WithAttempts sets how many times each server is tried (default 2).
func WithAttempts(n int) Option {
	return func(r *Resolver) error {
		if n < 1 || n > maxAttempts {
			return fmt.Errorf("attempts %d out of range 1..%d", n, maxAttempts)
		}
		r.attempts = n
		return nil
	}
}

// WithRand sets the random source used to order MX hosts of equal
// preference; tests pass a seeded source.
func WithRand(src *rand.Rand) Option {
	return func(r *Resolver) error {
		r.rand = src
		return nil
	}
}

// New builds a Resolver for servers given as "host", "host:port" or
// "[ipv6]:port" (port 53 by default). With no servers it reads
// /etc/resolv.conf. A zero timeout means the resolv.conf value or 5s; it
// applies to each single query.
func New(servers []string, timeout time.Duration, opts ...Option) (*Resolver, error) {
	return newResolver(servers, timeout, DefaultResolvConf, opts)
}

func newResolver(servers []string, timeout time.Duration, resolvConf string, opts []Option) (*Resolver, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("dns timeout %v is negative", timeout)
	}
	r := &Resolver{timeout: timeout, attempts: defaultAttempts}
	if len(servers) == 0 {
		cfg, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", resolvConf, err)
		}
		for _, s := range cfg.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cfg.Port))
		}
		if len(r.servers) == 0 {
			return nil, fmt.Errorf("%s lists no nameserver", resolvConf)
		}
		if r.timeout == 0 && cfg.Timeout > 0 {
			r.timeout = time.Duration(cfg.Timeout) * time.Second
		}
		if cfg.Attempts > 0 {
			r.attempts = min(cfg.Attempts, maxAttempts)
		}
	} else {
		for _, s := range servers {
			addr, err := parseServer(s)
			if err != nil {
				return nil, err
			}
			r.servers = append(r.servers, addr)
		}
	}
	if r.timeout == 0 {
		r.timeout = defaultTimeout
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, fmt.Errorf("dns resolver option: %w", err)
		}
	}
	r.udp = &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: udpBufSize}
	r.tcp = &dns.Client{Net: "tcp", Timeout: r.timeout}
	return r, nil
}

// parseServer validates one dns_servers entry and returns host:port.
func parseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("dns server: empty entry")
	}
	if a, err := netip.ParseAddr(s); err == nil { // bare IPv4 or IPv6
		return net.JoinHostPort(a.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.ContainsAny(s, "[]:") {
			return "", fmt.Errorf("dns server %q: %w", s, err)
		}
		host, port = s, "53"
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return "", fmt.Errorf("dns server %q: bad host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("dns server %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// Servers returns the name servers in use, as host:port.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// Protocols returns the address families LookupHost returns.
func (r *Resolver) Protocols() Protocols { return r.protocols }

// LookupMX returns the MX hosts of domain ordered by preference, hosts of
// equal preference in random order. A null MX yields an error matching
// ErrNullMX; no MX records yield an error for which IsNotFound is true, and
// the caller then falls back to the domain's addresses (RFC 5321 5.1).
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, _, err := r.query(ctx, domain, dns.TypeMX, false)
	if err != nil {
		return nil, err
	}
	mxs := make([]MX, 0, len(rrs))
	nullMX := false
	for _, rr := range rrs {
		m, ok := rr.(*dns.MX)
		if !ok {
			continue
		}
		if m.Mx == "." {
			nullMX = true
			continue
		}
		mxs = append(mxs, MX{Host: canonical(m.Mx), Pref: m.Preference})
	}
	if len(mxs) == 0 {
		if nullMX {
			return nil, &Error{Name: canonical(domain), Type: "MX", Kind: NullMX, Err: ErrNullMX}
		}
		return nil, &Error{Name: canonical(domain), Type: "MX", Kind: NoData}
	}
	r.sortMX(mxs)
	return mxs, nil
}

// sortMX orders by preference and shuffles each run of equal preference.
func (r *Resolver) sortMX(mxs []MX) {
	// Insertion sort: MX lists are tiny and this keeps the order stable
	// before shuffling, so a seeded source gives reproducible results.
	for i := 1; i < len(mxs); i++ {
		for j := i; j > 0 && mxs[j].Pref < mxs[j-1].Pref; j-- {
			mxs[j], mxs[j-1] = mxs[j-1], mxs[j]
		}
	}
	for start := 0; start < len(mxs); {
		end := start + 1
		for end < len(mxs) && mxs[end].Pref == mxs[start].Pref {
			end++
		}
		if end-start > 1 {
			group := mxs[start:end]
			r.shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
		}
		start = end
	}
}

func (r *Resolver) shuffle(n int, swap func(i, j int)) {
	if r.rand == nil {
		rand.Shuffle(n, swap)
		return
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	r.rand.Shuffle(n, swap)
}

// LookupHost returns the addresses of host: A records first, then AAAA, as
// allowed by the configured Protocols. An IP address literal is returned as
// is. When one family fails but the other has addresses, the addresses win.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	var types []uint16
	switch r.protocols {
	case ProtocolsIPv4:
		types = []uint16{dns.TypeA}
	case ProtocolsIPv6:
		types = []uint16{dns.TypeAAAA}
	default:
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	}
	var addrs []netip.Addr
	var firstErr error
	for _, qt := range types {
		rrs, _, err := r.query(ctx, host, qt, false)
		if err != nil {
			if firstErr == nil || (IsTemporary(err) && !IsTemporary(firstErr)) {
				firstErr = err
			}
			if IsNXDomain(err) { // the name is gone: no point asking AAAA
				break
			}
			continue
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
					addrs = append(addrs, a)
				}
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if firstErr == nil {
		firstErr = &Error{Name: canonical(host), Type: dns.TypeToString[types[0]], Kind: NoData}
	}
	return nil, firstErr
}

// LookupPTR returns the names an address maps back to, without trailing dots.
func (r *Resolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	if !addr.IsValid() {
		return nil, errors.New("dns lookup PTR: invalid address")
	}
	rev, err := dns.ReverseAddr(addr.Unmap().String())
	if err != nil {
		return nil, fmt.Errorf("dns lookup PTR %s: %w", addr, err)
	}
	rrs, _, err := r.query(ctx, rev, dns.TypePTR, false)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			names = append(names, canonical(p.Ptr))
		}
	}
	return names, nil
}

// LookupTXT returns the TXT records of name, each record's strings joined.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, _, err := r.query(ctx, name, dns.TypeTXT, false)
	if err != nil {
		return nil, err
	}
	var txts []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, strings.Join(t.Txt, ""))
		}
	}
	return txts, nil
}

// LookupTLSA returns the TLSA records of name (for example
// "_25._tcp.mx.example.com") and whether every answer carried the AD bit,
// i.e. the configured (trusted, validating) resolver vouched for them.
func (r *Resolver) LookupTLSA(ctx context.Context, name string) ([]*dns.TLSA, bool, error) {
	rrs, ad, err := r.query(ctx, name, dns.TypeTLSA, true)
	if err != nil {
		return nil, false, err
	}
	var out []*dns.TLSA
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TLSA); ok {
			out = append(out, t)
		}
	}
	return out, ad, nil
}

// query resolves name/qtype following CNAME chains, within the chain given in
// one answer and across queries, for at most maxCNAMEHops links.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16, dnssec bool) ([]dns.RR, bool, error) {
	typeName := dns.TypeToString[qtype]
	if err := validateName(name); err != nil {
		return nil, false, &Error{Name: name, Type: typeName, Kind: Malformed, Err: err}
	}
	target := dns.Fqdn(strings.ToLower(name))
	authenticated := true
	hops := 0
	for {
		resp, err := r.exchange(ctx, target, qtype, dnssec)
		if err != nil {
			err.Name, err.Type = canonical(name), typeName
			return nil, false, err
		}
		authenticated = authenticated && resp.AuthenticatedData
		if resp.Rcode == dns.RcodeNameError {
			return nil, false, &Error{Name: canonical(name), Type: typeName, Kind: NXDomain}
		}
		owner := target
		for {
			next, ok := cnameOf(resp.Answer, owner)
			if !ok {
				break
			}
			if hops++; hops > maxCNAMEHops {
				return nil, false, &Error{Name: canonical(name), Type: typeName, Kind: Malformed,
					Err: fmt.Errorf("CNAME chain longer than %d", maxCNAMEHops)}
			}
			owner = next
		}
		var rrs []dns.RR
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Rrtype == qtype && strings.EqualFold(h.Name, owner) {
				rrs = append(rrs, rr)
			}
		}
		if len(rrs) > 0 {
			return rrs, authenticated, nil
		}
		if owner == target { // no records and no CNAME to chase
			return nil, false, &Error{Name: canonical(name), Type: typeName, Kind: NoData}
		}
		target = owner // the chain ended without data: ask for its end
	}
}

func cnameOf(answer []dns.RR, owner string) (string, bool) {
	for _, rr := range answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
			return strings.ToLower(c.Target), true
		}
	}
	return "", false
}

// exchange sends one question to the servers in turn, each up to
// r.attempts times, switching to TCP when a UDP reply is truncated. It
// returns the first NOERROR or NXDOMAIN reply.
func (r *Resolver) exchange(ctx context.Context, fqdn string, qtype uint16, dnssec bool) (*dns.Msg, *Error) {
	var last *Error
	for attempt := 0; attempt < r.attempts; attempt++ {
		for _, srv := range r.servers {
			if err := ctx.Err(); err != nil {
				return nil, &Error{Kind: Timeout, Err: err}
			}
			m := new(dns.Msg)
			m.SetQuestion(fqdn, qtype)
			m.RecursionDesired = true
			m.SetEdns0(udpBufSize, dnssec)
			m.AuthenticatedData = dnssec // RFC 6840 5.7: ask for the AD bit
			resp, err := r.exchangeOne(ctx, m, srv)
			if err != nil {
				last = classifyNetErr(err)
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return resp, nil
			default:
				last = &Error{Kind: ServFail, Err: fmt.Errorf("server %s answered %s", srv, dns.RcodeToString[resp.Rcode])}
			}
		}
	}
	if last == nil {
		last = &Error{Kind: Network, Err: errors.New("no name servers")}
	}
	return nil, last
}

func (r *Resolver) exchangeOne(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	resp, _, err := r.udp.ExchangeContext(ctx, m, srv)
	if err == nil && !resp.Truncated {
		return resp, nil
	}
	if err != nil && (resp == nil || !resp.Truncated) {
		return nil, fmt.Errorf("udp %s: %w", srv, err)
	}
	resp, _, err = r.tcp.ExchangeContext(ctx, m, srv)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", srv, err)
	}
	return resp, nil
}

func classifyNetErr(err error) *Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Kind: Timeout, Err: err}
	}
	return &Error{Kind: Network, Err: err}
}

func validateName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return errors.New("empty name")
	}
	if len(n) > 253 {
		return errors.New("name longer than 253 octets")
	}
	if _, ok := dns.IsDomainName(n); !ok {
		return fmt.Errorf("invalid domain name %q", name)
	}
	if strings.ContainsAny(n, " \t\r\n\\") {
		return fmt.Errorf("invalid domain name %q", name)
	}
	return nil
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
