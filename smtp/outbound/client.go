package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/dnsres"
)

// TLS security levels (smtp_tls_security_level).
const (
	TLSNone    = "none"    // never STARTTLS
	TLSMay     = "may"     // STARTTLS when offered, certificate not checked
	TLSEncrypt = "encrypt" // STARTTLS required, certificate not checked
	TLSVerify  = "verify"  // STARTTLS required, certificate must match the MX host name
	TLSSecure  = "secure"  // STARTTLS required, certificate must match the nexthop domain
)

// Options configures a Client. Zero values take Postfix's defaults.
type Options struct {
	HeloName string           // smtp_helo_name ($myhostname); required
	Resolver *dnsres.Resolver // needed unless every nexthop is an IP literal or unix:
	// DefaultPort is smtp_tcp_port (25); LMTPDefaultPort is lmtp_tcp_port (24).
	DefaultPort, LMTPDefaultPort int

	ConnectTimeout  time.Duration // smtp_connect_timeout 30s
	HeloTimeout     time.Duration // smtp_helo_timeout 300s (greeting, EHLO, STARTTLS)
	MailTimeout     time.Duration // smtp_mail_timeout 300s
	RcptTimeout     time.Duration // smtp_rcpt_timeout 300s
	DataInitTimeout time.Duration // smtp_data_init_timeout 120s
	DataXferTimeout time.Duration // smtp_data_xfer_timeout 180s, per write
	DataDoneTimeout time.Duration // smtp_data_done_timeout 600s
	QuitTimeout     time.Duration // smtp_quit_timeout 300s
	RsetTimeout     time.Duration // smtp_rset_timeout 20s

	TLSLevel  string      // none (default), may, encrypt, verify, secure
	TLSConfig *tls.Config // RootCAs, client certificate, ServerName override for verify/secure

	BindAddress    string   // smtp_bind_address: local IP to connect from
	FallbackRelays []string // smtp_fallback_relay, SMTP only

	MXAddressLimit int // smtp_mx_address_limit 5; -1 no limit
	MXSessionLimit int // smtp_mx_session_limit 2; -1 no limit

	ConnectionCacheTimeLimit time.Duration // smtp_connection_cache_time_limit 2s
	ConnectionReuseTimeLimit time.Duration // smtp_connection_reuse_time_limit 300s
	DisableConnectionCache   bool

	Now func() time.Time // clock for delays; time.Now by default

	// Log, when set, receives events Postfix's smtp(8) logs on their own
	// line, such as each failed connection attempt.
	Log func(format string, args ...any)
}

// Client delivers messages. It is safe for concurrent use; the caller
// bounds concurrency per destination.
type Client struct {
	opts  Options
	bind  net.IP
	cache *connCache
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.HeloName == "" {
		return nil, errors.New("outbound: HeloName is required")
	}
	if strings.ContainsAny(opts.HeloName, " \t\r\n") {
		return nil, fmt.Errorf("outbound: bad HeloName %q", opts.HeloName)
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("outbound: %s %v is negative", name, *d)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	for _, t := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&opts.ConnectTimeout, 30 * time.Second, "ConnectTimeout"},
		{&opts.HeloTimeout, 300 * time.Second, "HeloTimeout"},
		{&opts.MailTimeout, 300 * time.Second, "MailTimeout"},
		{&opts.RcptTimeout, 300 * time.Second, "RcptTimeout"},
		{&opts.DataInitTimeout, 120 * time.Second, "DataInitTimeout"},
		{&opts.DataXferTimeout, 180 * time.Second, "DataXferTimeout"},
		{&opts.DataDoneTimeout, 600 * time.Second, "DataDoneTimeout"},
		{&opts.QuitTimeout, 300 * time.Second, "QuitTimeout"},
		{&opts.RsetTimeout, 20 * time.Second, "RsetTimeout"},
		{&opts.ConnectionCacheTimeLimit, 2 * time.Second, "ConnectionCacheTimeLimit"},
		{&opts.ConnectionReuseTimeLimit, 300 * time.Second, "ConnectionReuseTimeLimit"},
	} {
		if err := def(t.d, t.v, t.name); err != nil {
			return nil, err
		}
	}
	if opts.DefaultPort == 0 {
		opts.DefaultPort = 25
	}
	if opts.LMTPDefaultPort == 0 {
		opts.LMTPDefaultPort = 24
	}
	for _, p := range []int{opts.DefaultPort, opts.LMTPDefaultPort} {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("outbound: port %d out of range", p)
		}
	}
	switch opts.TLSLevel {
	case "":
		opts.TLSLevel = TLSNone
	case TLSNone, TLSMay, TLSEncrypt, TLSVerify, TLSSecure:
	default:
		return nil, fmt.Errorf("outbound: unknown TLS security level %q (want none, may, encrypt, verify or secure)", opts.TLSLevel)
	}
	if opts.MXAddressLimit == 0 {
		opts.MXAddressLimit = 5
	}
	if opts.MXSessionLimit == 0 {
		opts.MXSessionLimit = 2
	}
	for _, r := range opts.FallbackRelays {
		if _, err := ParseNexthop(TransportSMTP, r, opts.DefaultPort); err != nil {
			return nil, fmt.Errorf("outbound: fallback relay: %w", err)
		}
	}
	c := &Client{opts: opts, cache: newConnCache()}
	if opts.BindAddress != "" {
		a, err := netip.ParseAddr(strings.Trim(opts.BindAddress, "[]"))
		if err != nil {
			return nil, fmt.Errorf("outbound: bad BindAddress %q: %w", opts.BindAddress, err)
		}
		c.bind = a.AsSlice()
	}
	if c.opts.Now == nil {
		c.opts.Now = time.Now
	}
	return c, nil
}

// Close closes the cached idle connections. Deliveries still running
// finish; their connections are closed instead of cached.
func (c *Client) Close() error {
	c.cache.closeAll()
	return nil
}

// IdleConnections returns how many connections are parked in the cache.
func (c *Client) IdleConnections() int { return c.cache.count() }

// candidate is one server address to try.
type candidate struct {
	host    string // name for logs: MX host, IP literal, or $myhostname for unix:
	addr    string // IP address or socket path
	port    int    // 0 for unix
	network string // "tcp" or "unix"
	nexthop string // domain the certificate must match at level secure
	lmtp    bool
}

func (cd candidate) namaddr() string { return cd.host + "[" + cd.addr + "]" }

func (cd candidate) relay() string {
	if cd.port == 0 {
		return cd.namaddr()
	}
	return fmt.Sprintf("%s:%d", cd.namaddr(), cd.port)
}

func (cd candidate) dialAddr() string {
	if cd.network == "unix" {
		return cd.addr
	}
	return net.JoinHostPort(cd.addr, fmt.Sprint(cd.port))
}

// resolve turns a destination into server addresses, in the order to try.
func (c *Client) resolve(ctx context.Context, d Destination, transport string) ([]candidate, *failure) {
	cands, f := c.resolveAddrs(ctx, d)
	for i := range cands {
		cands[i].lmtp = transport == TransportLMTP
	}
	return cands, f
}

func (c *Client) resolveAddrs(ctx context.Context, d Destination) ([]candidate, *failure) {
	switch {
	case d.Unix:
		return []candidate{{host: c.opts.HeloName, addr: d.Host, network: "unix"}}, nil
	case d.Literal:
		return []candidate{{host: d.Host, addr: d.Host, port: d.Port, network: "tcp", nexthop: d.Host}}, nil
	case c.opts.Resolver == nil:
		return nil, &failure{dsn: "4.3.5", reason: "mail system configuration error: no DNS resolver configured", relay: "none"}
	}
	hosts := []string{d.Host}
	if d.MX {
		mxs, err := c.opts.Resolver.LookupMX(ctx, d.Host)
		switch {
		case errors.Is(err, dnsres.ErrNullMX):
			return nil, &failure{dsn: "5.1.0", reason: fmt.Sprintf("Domain %s does not accept mail (nullMX)", d.Host), relay: "none"}
		case dnsres.IsNotFound(err):
			// No MX: the domain itself is the mail host (RFC 5321 5.1).
		case err != nil:
			return nil, dnsFailure(err, d.Host, "MX")
		default:
			hosts = hosts[:0]
			for _, mx := range mxs {
				hosts = append(hosts, mx.Host)
			}
		}
	}
	var cands []candidate
	var lastErr *failure
	anyTemp := false
	for _, h := range hosts {
		addrs, err := c.opts.Resolver.LookupHost(ctx, h)
		if err != nil {
			lastErr = dnsFailure(err, h, "A")
			anyTemp = anyTemp || dnsres.IsTemporary(err)
			continue
		}
		for _, a := range addrs {
			if c.opts.MXAddressLimit > 0 && len(cands) >= c.opts.MXAddressLimit {
				break
			}
			cands = append(cands, candidate{host: h, addr: a.String(), port: d.Port, network: "tcp", nexthop: d.Host})
		}
	}
	if len(cands) == 0 {
		if lastErr == nil {
			lastErr = &failure{dsn: "4.4.3", reason: "no mail host addresses found", relay: "none"}
		}
		if anyTemp && lastErr.permanent() {
			lastErr.dsn = "4.4.3"
		}
		return nil, lastErr
	}
	return cands, nil
}

// dnsFailure words a lookup error as Postfix does.
func dnsFailure(err error, name, qtype string) *failure {
	text := "Host not found, try again"
	var de *dnsres.Error
	if errors.As(err, &de) {
		text = de.HostErrorText()
		if de.Type != "" {
			qtype = de.Type
		}
		if de.Name != "" {
			name = de.Name
		}
	}
	dsn := "4.4.3"
	if !dnsres.IsTemporary(err) {
		dsn = "5.4.4"
	}
	return &failure{
		dsn:    dsn,
		reason: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=%s: %s", name, qtype, text),
		relay:  "none",
	}
}

// Deliver makes one delivery attempt and returns a Result per recipient.
// It never panics on bad input: an invalid request defers (or, for a bad
// recipient address, bounces) the recipients with a reason.
func (c *Client) Deliver(ctx context.Context, req *Request) Outcome {
	if req == nil {
		return Outcome{Relay: "none"}
	}
	d := newDelivery(c, req)
	d.run(ctx)
	return d.outcome()
}
