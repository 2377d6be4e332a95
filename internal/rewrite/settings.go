package rewrite

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/yubin-mta/yubin/internal/lookup"
)

// Settings are the main.cf parameters that drive rewriting and routing,
// already expanded ($name references resolved). Start from DefaultSettings
// to get Postfix 3.7's defaults; the zero value of a bool field is "no".
type Settings struct {
	MyHostname string // myhostname; required
	MyDomain   string // mydomain; used by append_dot_mydomain
	MyOrigin   string // myorigin; "" means MyHostname, as in Postfix

	// MyDestination lists the domains delivered locally (mydestination).
	// Postfix's default is "$myhostname, localhost.$mydomain, localhost":
	// localhost is local only because it is listed there.
	MyDestination DomainList
	// InetInterfaces and ProxyInterfaces are the addresses whose literals
	// (user@[192.0.2.1]) are local. Entries are IP addresses, optionally
	// bracketed; "all" means every address of this host and
	// "loopback-only" means 127.0.0.1 and ::1. Host names must be resolved
	// by the caller.
	InetInterfaces  []string
	ProxyInterfaces []string

	RelayDomains          DomainList // relay_domains
	VirtualAliasDomains   DomainList // virtual_alias_domains (default: the virtual_alias_maps tables)
	VirtualMailboxDomains DomainList // virtual_mailbox_domains

	// RecipientDelimiter is recipient_delimiter: the characters that start
	// an address extension (user+ext); "" disables extensions.
	RecipientDelimiter string

	// Relayhost is the nexthop for the relay and default classes, as given
	// (e.g. "[smtp.example.com]:587" or "a.example:587, b.example:587").
	Relayhost string
	// FallbackRelay is smtp_fallback_relay (fallback_relay): destinations
	// the SMTP client tries when the nexthop fails. Route does not use it;
	// see Rewriter.SMTPDestinations.
	FallbackRelay []string

	// Class transports as "transport[:nexthop]"; "" means Postfix's default
	// (relay, smtp, local:$myhostname, virtual).
	RelayTransport   string
	DefaultTransport string
	LocalTransport   string
	VirtualTransport string

	// TransportMaps is transport_maps; TransportMatchSubdomains is true when
	// parent_domain_matches_subdomains lists transport_maps (not the
	// default: then ".example.com" keys are needed for subdomains).
	TransportMaps            []lookup.Table
	TransportMatchSubdomains bool

	AliasMaps        []lookup.Table // alias_maps (aliases(5))
	VirtualAliasMaps []lookup.Table // virtual_alias_maps (virtual(5))

	AppendAtMyorigin    bool // append_at_myorigin (default yes)
	AppendDotMydomain   bool // append_dot_mydomain (default no since Postfix 3.0)
	SwapBangpath        bool // swap_bangpath (default yes)
	AllowPercentHack    bool // allow_percent_hack (default yes)
	OwnerRequestSpecial bool // owner_request_special (default yes)

	// AllowMailToCommands and AllowMailToFiles list where |command and
	// /file targets are allowed: "alias", "forward", "include" (Postfix
	// default: alias, forward). Only "alias" and "include" matter here.
	AllowMailToCommands []string
	AllowMailToFiles    []string

	// Limits; 0 means Postfix's default of 1000.
	VirtualAliasRecursionLimit int
	VirtualAliasExpansionLimit int
}

// DomainList is a main.cf domain list such as mydestination or
// relay_domains, split into its literal patterns and its type:table
// entries (opened by the caller).
type DomainList struct {
	// Patterns are tried first, in order, first match wins: "example.com"
	// matches that name (and its subdomains when MatchSubdomains),
	// ".example.com" matches subdomains, "!pattern" excludes.
	Patterns []string
	// Tables are tried after Patterns with the domain as key, then with
	// its parents: "example.com" keys when MatchSubdomains, else
	// ".example.com" keys.
	Tables []lookup.Table
	// MatchSubdomains is true when parent_domain_matches_subdomains lists
	// the parameter; Postfix's default lists relay_domains only.
	MatchSubdomains bool
}

// DefaultSettings returns Postfix 3.7's defaults for host myhostname:
// mydomain is myhostname minus its first label, myorigin = $myhostname,
// mydestination = $myhostname, localhost.$mydomain, localhost,
// inet_interfaces = all, relay_domains empty (compatibility_level >= 2),
// append_at_myorigin, swap_bangpath, allow_percent_hack and
// owner_request_special on, append_dot_mydomain off.
func DefaultSettings(myhostname string) Settings {
	mydomain := myhostname
	if i := strings.IndexByte(myhostname, '.'); i >= 0 {
		mydomain = myhostname[i+1:]
	}
	return Settings{
		MyHostname:          myhostname,
		MyDomain:            mydomain,
		MyOrigin:            myhostname,
		MyDestination:       DomainList{Patterns: []string{myhostname, "localhost." + mydomain, "localhost"}},
		InetInterfaces:      []string{"all"},
		RelayDomains:        DomainList{MatchSubdomains: true},
		AppendAtMyorigin:    true,
		SwapBangpath:        true,
		AllowPercentHack:    true,
		OwnerRequestSpecial: true,
		AllowMailToCommands: []string{"alias", "forward"},
		AllowMailToFiles:    []string{"alias", "forward"},
	}
}

const defaultLimit = 1000

// Rewriter applies one Settings. It is safe for concurrent use as long as
// its tables are.
type Rewriter struct {
	s                  Settings
	myorigin           string // lower-cased
	localAddrs         []netip.Addr
	localTransportName string
}

// New validates s, fills the documented defaults and returns a Rewriter.
func New(s Settings) (*Rewriter, error) {
	if s.MyHostname == "" {
		return nil, fmt.Errorf("rewrite: myhostname is empty")
	}
	if !validDomain(s.MyHostname) {
		return nil, fmt.Errorf("rewrite: myhostname %q is not a valid host name", s.MyHostname)
	}
	if s.MyOrigin == "" {
		s.MyOrigin = s.MyHostname
	}
	defaults := []struct {
		name string
		v    *string
		def  string
	}{
		{"relay_transport", &s.RelayTransport, "relay"},
		{"default_transport", &s.DefaultTransport, "smtp"},
		{"local_transport", &s.LocalTransport, "local:" + s.MyHostname},
		{"virtual_transport", &s.VirtualTransport, "virtual"},
	}
	for _, d := range defaults {
		if *d.v == "" {
			*d.v = d.def
		}
		if name, _ := splitTransport(*d.v); name == "" {
			return nil, fmt.Errorf("rewrite: %s = %q: null transport is not allowed", d.name, *d.v)
		}
	}
	for _, l := range []struct {
		name string
		v    *int
	}{
		{"virtual_alias_recursion_limit", &s.VirtualAliasRecursionLimit},
		{"virtual_alias_expansion_limit", &s.VirtualAliasExpansionLimit},
	} {
		switch {
		case *l.v < 0:
			return nil, fmt.Errorf("rewrite: %s = %d: must not be negative", l.name, *l.v)
		case *l.v == 0:
			*l.v = defaultLimit
		}
	}
	var addrs []netip.Addr
	for _, list := range []struct {
		name  string
		items []string
	}{{"inet_interfaces", s.InetInterfaces}, {"proxy_interfaces", s.ProxyInterfaces}} {
		got, err := interfaceAddrs(list.items)
		if err != nil {
			return nil, fmt.Errorf("rewrite: %s: %w", list.name, err)
		}
		addrs = append(addrs, got...)
	}
	name, _ := splitTransport(s.LocalTransport)
	return &Rewriter{
		s:                  s,
		myorigin:           strings.ToLower(s.MyOrigin),
		localAddrs:         addrs,
		localTransportName: name,
	}, nil
}

// FallbackRelay returns smtp_fallback_relay as configured.
func (r *Rewriter) FallbackRelay() []string { return append([]string(nil), r.s.FallbackRelay...) }

// SMTPDestinations is the ordered list of destinations an SMTP client
// (not LMTP) tries for rt: the route's nexthop (which, like relayhost
// since Postfix 3.5, may list several destinations separated by commas or
// spaces), then each fallback relay. This is smtp(8)'s behaviour for all
// four combinations of relayhost and smtp_fallback_relay: with a relayhost
// the nexthop already is the relayhost, and the fallback relays are tried
// when it fails.
func (r *Rewriter) SMTPDestinations(rt Route) []string {
	var out []string
	add := func(list string) {
		for _, d := range strings.FieldsFunc(list, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }) {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	add(rt.Nexthop)
	for _, f := range r.s.FallbackRelay {
		add(f)
	}
	return out
}

// interfaceAddrs turns inet_interfaces-style entries into addresses.
func interfaceAddrs(items []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, item := range items {
		item = strings.TrimSpace(item)
		switch strings.ToLower(item) {
		case "":
			continue
		case "all":
			ifaddrs, err := net.InterfaceAddrs()
			if err != nil {
				return nil, fmt.Errorf("listing interface addresses for \"all\": %w", err)
			}
			for _, a := range ifaddrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					out = append(out, p.Addr().Unmap())
				}
			}
			continue
		case "loopback-only":
			out = append(out, netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback())
			continue
		}
		a, ok := parseLiteral(item)
		if !ok {
			if b, err := netip.ParseAddr(item); err == nil {
				a, ok = b.Unmap(), true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%q is not an IP address (resolve host names first)", item)
		}
		out = append(out, a)
	}
	return out, nil
}

// splitTransport splits "transport:nexthop" at the first colon.
func splitTransport(v string) (transport, nexthop string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}
