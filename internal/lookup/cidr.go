package lookup

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// CIDRTable is a compiled cidr_table(5): "network/prefix result" or
// "address result" rules, "!" negation and if/endif blocks, first match
// wins. Keys that are not IP addresses match nothing.
type CIDRTable struct {
	name string
	list ruleList
}

// ParseCIDR parses cidr_table(5) source text.
func ParseCIDR(name string, r io.Reader) (*CIDRTable, error) {
	src, err := readSource(name, r)
	if err != nil {
		return nil, err
	}
	list, err := compileCIDRRules(src)
	if err != nil {
		return nil, err
	}
	return &CIDRTable{name: name, list: *list}, nil
}

// Lookup matches key, an IPv4 or IPv6 address, against the rules.
func (t *CIDRTable) Lookup(key string) (string, bool, error) { return t.list.lookup(key) }

// Name is the name given to ParseCIDR.
func (t *CIDRTable) Name() string { return t.name }

// IsPattern reports that keys are patterns (see IsPattern).
func (t *CIDRTable) IsPattern() bool { return true }

func compileCIDRRules(src *source) (*ruleList, error) {
	b := &blockParser{src: src}
	for _, l := range src.lines {
		keyword, rest := statement(l.text)
		switch keyword {
		case "endif":
			if rest != "" {
				return nil, src.errorf(l.line, "extra text after ENDIF: %q", rest)
			}
			if err := b.addEndif(l.line); err != nil {
				return nil, err
			}
			continue
		case "if":
			pattern, extra, _ := strings.Cut(rest, " ")
			if strings.TrimSpace(extra) != "" {
				return nil, src.errorf(l.line, "extra text after IF statement: %q", extra)
			}
			r, err := parseCIDRPattern(pattern)
			if err != nil {
				return nil, src.errorf(l.line, "%v", err)
			}
			b.addIf(r, l.line)
			continue
		}
		pattern, result, ok := splitKeyValue(l.text)
		if !ok {
			return nil, src.errorf(l.line, "no lookup result after %q", pattern)
		}
		r, err := parseCIDRPattern(pattern)
		if err != nil {
			return nil, src.errorf(l.line, "%v", err)
		}
		r.result = template{{literal: result}}
		b.rules = append(b.rules, r)
	}
	rules, err := b.finish()
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
