package rewrite

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/yubin-mta/yubin/internal/lookup"
)

// AddressClass is a recipient domain's class (Postfix ADDRESS_CLASS_README).
type AddressClass int

const (
	ClassLocal          AddressClass = iota + 1 // mydestination, inet_interfaces/proxy_interfaces literals
	ClassVirtualAlias                           // virtual_alias_domains
	ClassVirtualMailbox                         // virtual_mailbox_domains
	ClassRelay                                  // relay_domains
	ClassDefault                                // everything else
)

func (c AddressClass) String() string {
	switch c {
	case ClassLocal:
		return "local"
	case ClassVirtualAlias:
		return "virtual_alias"
	case ClassVirtualMailbox:
		return "virtual_mailbox"
	case ClassRelay:
		return "relay"
	case ClassDefault:
		return "default"
	}
	return fmt.Sprintf("AddressClass(%d)", int(c))
}

// Class returns the address class of domain with Postfix's precedence:
// local, then virtual alias, virtual mailbox, relay, default. A domain
// listed in more than one list gets the first class (Postfix warns about
// such configurations). The error is a table failure, wrapping ErrTable.
func (r *Rewriter) Class(domain string) (AddressClass, error) {
	domain = normalizeDomain(domain)
	local, err := r.isLocal(domain)
	if err != nil {
		return 0, err
	}
	if local {
		return ClassLocal, nil
	}
	return r.remoteClass(domain)
}

// remoteClass classifies a domain already known not to be local.
func (r *Rewriter) remoteClass(domain string) (AddressClass, error) {
	lists := []struct {
		name  string
		list  *DomainList
		class AddressClass
	}{
		{"virtual_alias_domains", &r.s.VirtualAliasDomains, ClassVirtualAlias},
		{"virtual_mailbox_domains", &r.s.VirtualMailboxDomains, ClassVirtualMailbox},
		{"relay_domains", &r.s.RelayDomains, ClassRelay},
	}
	for _, l := range lists {
		ok, err := l.list.Match(domain)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", l.name, err)
		}
		if ok {
			return l.class, nil
		}
	}
	return ClassDefault, nil
}

// isLocal is Postfix's resolve_local(): the domain matches mydestination,
// or is an address literal of one of our interfaces.
func (r *Rewriter) isLocal(domain string) (bool, error) {
	domain = normalizeDomain(domain)
	if domain == "" {
		return false, nil
	}
	if strings.HasPrefix(domain, "[") {
		a, ok := parseLiteral(domain)
		if !ok {
			return false, nil
		}
		for _, l := range r.localAddrs {
			if l == a {
				return true, nil
			}
		}
		return false, nil
	}
	ok, err := r.s.MyDestination.Match(domain)
	if err != nil {
		return false, fmt.Errorf("mydestination: %w", err)
	}
	return ok, nil
}

// Match reports whether domain is in the list, with Postfix's
// match_list semantics for host names (see DomainList).
func (l *DomainList) Match(domain string) (bool, error) {
	domain = normalizeDomain(domain)
	if domain == "" {
		return false, nil
	}
	for _, p := range l.Patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		negate := strings.HasPrefix(p, "!")
		if negate {
			p = strings.TrimSpace(p[1:])
		}
		if p == "" {
			continue
		}
		if l.patternMatches(domain, p) {
			return !negate, nil
		}
	}
	if len(l.Tables) == 0 {
		return false, nil
	}
	for _, key := range parentKeys(domain, l.MatchSubdomains) {
		for _, t := range l.Tables {
			_, found, err := t.Lookup(key)
			if err != nil {
				return false, fmt.Errorf("%w: %s: lookup %q: %w", ErrTable, t.Name(), key, err)
			}
			if found {
				return true, nil
			}
		}
	}
	return false, nil
}

func (l *DomainList) patternMatches(domain, pattern string) bool {
	if domain == pattern {
		return true
	}
	if strings.HasPrefix(pattern, ".") {
		return strings.HasSuffix(domain, pattern)
	}
	return l.MatchSubdomains && strings.HasSuffix(domain, "."+pattern)
}

// parentKeys lists domain and the lookup keys for its parent domains:
// "example.com" style when matchSubdomains, ".example.com" style otherwise
// (Postfix match_hostname and transport_lookup).
func parentKeys(domain string, matchSubdomains bool) []string {
	keys := []string{domain}
	if strings.HasPrefix(domain, "[") {
		return keys
	}
	for i := 1; i < len(domain); i++ {
		if domain[i] != '.' || i == len(domain)-1 {
			continue
		}
		if matchSubdomains {
			keys = append(keys, domain[i+1:])
		} else {
			keys = append(keys, domain[i:])
		}
	}
	return keys
}

// normalizeDomain lower-cases a domain and strips one trailing dot (but
// not from "..", which stays visibly broken). Address literals are kept
// as written ("[IPv6:...]").
func normalizeDomain(d string) string {
	if strings.HasPrefix(d, "[") {
		return d
	}
	d = strings.ToLower(d)
	if strings.HasSuffix(d, ".") && !strings.HasSuffix(d, "..") {
		d = d[:len(d)-1]
	}
	return d
}

// parseLiteral parses an address literal "[192.0.2.1]", "[IPv6:2001:db8::1]"
// or Postfix's "[2001:db8::1]".
func parseLiteral(s string) (netip.Addr, bool) {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return netip.Addr{}, false
	}
	inner := s[1 : len(s)-1]
	v6 := false
	if len(inner) > 5 && strings.EqualFold(inner[:5], "ipv6:") {
		inner, v6 = inner[5:], true
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || a.Zone() != "" || (v6 && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validDomain is a lenient form of Postfix's valid_hostname /
// valid_hostliteral: labels of letters, digits, '-', '_' or UTF-8 (for
// SMTPUTF8), 1..63 octets, 255 in total, not all numeric; or an address
// literal.
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") {
		_, ok := parseLiteral(d)
		return ok
	}
	if d == "" || len(d) > 255 {
		return false
	}
	numeric := true
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_', c >= 0x80:
				numeric = false
			default:
				return false
			}
		}
	}
	return !numeric
}

// isPatternTable reports whether t is a regular-expression table. Postfix
// gives such tables only the full address, never the partial keys
// (user@domain without extension, domain, @domain), so a pattern written
// for addresses cannot match a bare domain by accident.
func isPatternTable(t lookup.Table) bool {
	name := strings.ToLower(t.Name())
	return strings.HasPrefix(name, "regexp:") || strings.HasPrefix(name, "pcre:")
}

// find looks key up in tables in order and returns the first value.
// partial keys skip pattern tables (see isPatternTable).
func find(tables []lookup.Table, key string, partial bool) (string, bool, error) {
	for _, t := range tables {
		if partial && isPatternTable(t) {
			continue
		}
		v, found, err := t.Lookup(key)
		if err != nil {
			return "", false, fmt.Errorf("%w: %s: lookup %q: %w", ErrTable, t.Name(), key, err)
		}
		if found {
			return v, true, nil
		}
	}
	return "", false, nil
}
