package lookup

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ParseCIDR parses cidr_table(5) source text: "network/prefix result" or
// "address result" rules, "!" negation and if/endif blocks, first match
// wins. Keys that are not IP addresses match nothing.
func ParseCIDR(name string, r io.Reader) (*PatternTable, error) {
	src, err := readSource(name, r)
	if err != nil {
		return nil, err
	}
	list, err := compileCIDRRules(src)
	if err != nil {
		return nil, err
	}
	return &PatternTable{name: name, rules: list}, nil
}

func compileCIDRRules(src *source) (*ruleList, error) {
	ifRule := func(rest string) (rule, error) {
		pattern, extra, _ := strings.Cut(rest, " ")
		if strings.TrimSpace(extra) != "" {
			return rule{}, fmt.Errorf("extra text after IF statement: %q", extra)
		}
		return parseCIDRPattern(pattern)
	}
	plainRule := func(text string) (rule, error) {
		pattern, result, ok := splitKeyValue(text)
		if !ok {
			return rule{}, fmt.Errorf("no lookup result after %q", pattern)
		}
		r, err := parseCIDRPattern(pattern)
		r.result = template{{literal: result}}
		return r, err
	}
	rules, err := compileBlocks(src, ifRule, plainRule)
	if err != nil {
		return nil, err
	}
	return &ruleList{rules: rules, prepare: prepareIPKey}, nil
}

// prepareIPKey keeps only keys that are plain IP addresses; like Postfix,
// "[1.2.3.4]" and IPv4 octets with leading zeros are not accepted as keys.
func prepareIPKey(key string) (string, bool) {
	ip, err := netip.ParseAddr(key)
	if err != nil || ip.Zone() != "" {
		return "", false
	}
	return ip.String(), true
}

// parseCIDRPattern parses "[!]address[/prefix]"; brackets around the
// address ("[1.2.3.0]/24" or "[1.2.3.0/24]") are allowed.
func parseCIDRPattern(s string) (rule, error) {
	var r rule
	if strings.HasPrefix(s, "!") {
		r.negate = true
		s = s[1:]
	}
	text := s
	if strings.HasPrefix(text, "[") {
		addr, after, ok := strings.Cut(text[1:], "]")
		if !ok || (after != "" && !strings.HasPrefix(after, "/")) {
			return r, fmt.Errorf("bad address pattern %q", s)
		}
		text = addr + after
	}
	var prefix netip.Prefix
	if strings.Contains(text, "/") {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			return r, fmt.Errorf("bad network/prefix pattern %q: %w", s, err)
		}
		if p.Masked() != p {
			return r, fmt.Errorf("non-null host address bits in %q, perhaps you should use %q instead", s, p.Masked().String())
		}
		prefix = p
	} else {
		ip, err := netip.ParseAddr(text)
		if err != nil || ip.Zone() != "" {
			return r, fmt.Errorf("bad address pattern %q", s)
		}
		prefix = netip.PrefixFrom(ip, ip.BitLen())
	}
	negate := r.negate
	r.match = func(key string) ([]string, bool) {
		ip, err := netip.ParseAddr(key)
		// A rule of the other address family never matches, negated or not.
		if err != nil || ip.Is4() != prefix.Addr().Is4() {
			return nil, negate
		}
		return nil, prefix.Contains(ip)
	}
	return r, nil
}
