package outbound

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Destination is a parsed nexthop.
type Destination struct {
	// Host is the domain (MX is true), the host name or IP address, or for
	// Unix the socket path.
	Host string
	Port int  // TCP port; 0 for Unix
	MX   bool // look up MX records of Host (SMTP without [brackets])
	Unix bool // LMTP over a UNIX-domain socket
	// Literal is true when Host is an IP address (no DNS at all).
	Literal bool
}

// wellKnownPorts are the service names Postfix users write in nexthops.
var wellKnownPorts = map[string]int{"smtp": 25, "lmtp": 24, "submission": 587, "smtps": 465, "submissions": 465}

// ParseNexthop parses a nexthop as Postfix's smtp(8)/lmtp(8) do:
//
//	smtp: example.com  example.com:2525  [mx.example.com]  [mx.example.com]:2525
//	      [192.0.2.1]:2525  [ipv6:2001:db8::1]:25  [2001:db8::1]
//	lmtp: unix:/path/to/socket  inet:host:port  host:port  [host]:port  host
//
// Only SMTP destinations without brackets get an MX lookup. defaultPort is
// used when no port is given (smtp_tcp_port or lmtp_tcp_port).
func ParseNexthop(transport, nexthop string, defaultPort int) (Destination, error) {
	if transport != TransportSMTP && transport != TransportLMTP {
		return Destination{}, fmt.Errorf("unsupported transport %q (want smtp or lmtp)", transport)
	}
	if defaultPort < 1 || defaultPort > 65535 {
		return Destination{}, fmt.Errorf("default port %d out of range", defaultPort)
	}
	s := strings.TrimSpace(nexthop)
	if s == "" {
		return Destination{}, errors.New("empty nexthop")
	}
	if strings.ContainsAny(s, " \t\r\n\x00") {
		return Destination{}, fmt.Errorf("nexthop %q contains white space or control characters", nexthop)
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "unix:"):
		if transport != TransportLMTP {
			return Destination{}, fmt.Errorf("nexthop %q: unix: is only valid for lmtp", nexthop)
		}
		path := s[len("unix:"):]
		if path == "" {
			return Destination{}, fmt.Errorf("nexthop %q: empty socket path", nexthop)
		}
		return Destination{Host: path, Unix: true}, nil
	case strings.HasPrefix(lower, "inet:"):
		s = s[len("inet:"):]
		if s == "" {
			return Destination{}, fmt.Errorf("nexthop %q: empty host", nexthop)
		}
	}

	d := Destination{Port: defaultPort}
	var host, rest string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Destination{}, fmt.Errorf("nexthop %q: missing ]", nexthop)
		}
		host, rest = s[1:end], s[end+1:]
		if len(host) > 5 && strings.EqualFold(host[:5], "ipv6:") {
			host = host[5:]
		}
	} else {
		host, rest = s, ""
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, rest = s[:i], s[i:]
		}
		d.MX = transport == TransportSMTP
	}
	if rest != "" {
		if rest[0] != ':' || len(rest) == 1 {
			return Destination{}, fmt.Errorf("nexthop %q: bad text after host: %q", nexthop, rest)
		}
		port, err := parsePort(rest[1:])
		if err != nil {
			return Destination{}, fmt.Errorf("nexthop %q: %w", nexthop, err)
		}
		d.Port = port
	}
	if host == "" {
		return Destination{}, fmt.Errorf("nexthop %q: empty host", nexthop)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Destination{}, fmt.Errorf("nexthop %q: zoned address not supported", nexthop)
		}
		d.Host, d.Literal, d.MX = a.Unmap().String(), true, false
		return d, nil
	}
	if err := checkHostname(host); err != nil {
		return Destination{}, fmt.Errorf("nexthop %q: %w", nexthop, err)
	}
	d.Host = strings.ToLower(strings.TrimSuffix(host, "."))
	return d, nil
}

func parsePort(s string) (int, error) {
	if p, ok := wellKnownPorts[strings.ToLower(s)]; ok {
		return p, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// checkHostname accepts LDH names (plus "_", which appears in real MX names).
func checkHostname(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return fmt.Errorf("bad host name %q", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad host name %q", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("bad host name %q", h)
			}
		}
	}
	return nil
}
