package policy

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Networks is a parsed mynetworks-style list of networks. Entries starting
// with '!' exclude; the first matching entry decides.
type Networks struct {
	entries []netEntry
}

type netEntry struct {
	prefix  netip.Prefix
	exclude bool
}

// ParseNetworks parses mynetworks entries: "127.0.0.0/8", "192.0.2.1",
// "[::1]/128", "[2001:db8::]/32", "::1", "!192.0.2.7" and "/file/name"
// (a file of such entries, '#' comments allowed). Each element of list may
// itself hold several entries separated by spaces or commas, as in main.cf.
// As in Postfix, a network with host bits set ("10.0.0.1/8") is an error.
func ParseNetworks(list []string) (*Networks, error) {
	n := &Networks{}
	for _, entry := range SplitList(list...) {
		if err := n.add(entry, 0); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// maxNetworkFileDepth bounds "/file" entries that name other files.
const maxNetworkFileDepth = 4

func (n *Networks) add(entry string, depth int) error {
	exclude := false
	if rest, ok := strings.CutPrefix(entry, "!"); ok {
		exclude, entry = true, rest
	}
	if strings.HasPrefix(entry, "/") {
		if exclude {
			return fmt.Errorf("mynetworks: negated file %q is not supported", entry)
		}
		return n.addFile(entry, depth)
	}
	if strings.Contains(entry, ":") && !strings.Contains(entry, "[") && strings.Count(entry, ":") == 1 {
		return fmt.Errorf("mynetworks: lookup table %q is not supported, list networks instead", entry)
	}
	prefix, err := parseNetwork(entry)
	if err != nil {
		return err
	}
	n.entries = append(n.entries, netEntry{prefix: prefix, exclude: exclude})
	return nil
}

func (n *Networks) addFile(path string, depth int) error {
	if depth >= maxNetworkFileDepth {
		return fmt.Errorf("mynetworks: files nested too deeply at %q", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mynetworks: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, entry := range SplitList(line) {
			if err := n.add(entry, depth+1); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("mynetworks: read %s: %w", path, err)
	}
	return nil
}

// parseNetwork parses one address or network, IPv6 optionally in brackets.
func parseNetwork(entry string) (netip.Prefix, error) {
	addrText, bitsText, hasBits := strings.Cut(entry, "/")
	if inner, ok := strings.CutPrefix(addrText, "["); ok {
		var closed bool
		if addrText, closed = strings.CutSuffix(inner, "]"); !closed {
			return netip.Prefix{}, fmt.Errorf("mynetworks: missing ']' in %q", entry)
		}
	}
	addr, err := netip.ParseAddr(addrText)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("mynetworks: bad address in %q", entry)
	}
	bits := addr.BitLen()
	if hasBits {
		n, err := strconv.Atoi(bitsText)
		if err != nil || n < 0 || n > addr.BitLen() || bitsText[0] == '+' {
			return netip.Prefix{}, fmt.Errorf("mynetworks: bad prefix length in %q", entry)
		}
		bits = n
	}
	prefix := netip.PrefixFrom(addr, bits)
	if prefix.Masked() != prefix {
		return netip.Prefix{}, fmt.Errorf("mynetworks: non-null host address bits in %q, perhaps you should use %q instead",
			entry, prefix.Masked().String())
	}
	return unmapPrefix(prefix), nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96), so that
// IPv4 clients match whichever way the network was written.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Contains reports whether ip is in the list. IPv4-mapped IPv6 addresses
// match IPv4 networks.
func (n *Networks) Contains(ip netip.Addr) bool {
	if n == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, e := range n.entries {
		if e.prefix.Contains(ip) {
			return !e.exclude
		}
	}
	return false
}

// String returns the list in Postfix's notation (IPv6 in brackets).
func (n *Networks) String() string {
	if n == nil {
		return ""
	}
	parts := make([]string, 0, len(n.entries))
	for _, e := range n.entries {
		s := e.prefix.String()
		if e.prefix.Addr().Is6() {
			s = "[" + e.prefix.Addr().String() + "]/" + fmt.Sprint(e.prefix.Bits())
		}
		if e.exclude {
			s = "!" + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// StyleNetworks builds mynetworks from mynetworks_style and the machine's
// interface networks (as from net.Interfaces): "host" trusts only the
// interface addresses, "subnet" their subnets, "class" their class A/B/C
// networks (IPv6 is treated like "subnet" there, as in Postfix).
func StyleNetworks(style string, interfaces []netip.Prefix) (*Networks, error) {
	n := &Networks{}
	for _, p := range interfaces {
		var prefix netip.Prefix
		switch style {
		case "host":
			prefix = netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
		case "subnet":
			prefix = p.Masked()
		case "class":
			prefix = p.Masked()
			if a := p.Addr().Unmap(); a.Is4() {
				bits := 24
				switch b := a.As4()[0]; {
				case b < 128:
					bits = 8
				case b < 192:
					bits = 16
				}
				prefix, _ = a.Prefix(bits)
			}
		default:
			return nil, fmt.Errorf("mynetworks_style: unknown style %q (want host, subnet or class)", style)
		}
		n.entries = append(n.entries, netEntry{prefix: unmapPrefix(prefix)})
	}
	return n, nil
}

// SplitList splits main.cf list values on whitespace and commas.
func SplitList(values ...string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})...)
	}
	return out
}
