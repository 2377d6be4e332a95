package config

import (
	"fmt"
	"net"
	"strings"
)

// Listener is one address an inet service of master.cf listens on.
type Listener struct {
	Address string // host:port for net.Listen; ":25" means all addresses
	Service Service
}

// protocols reports which address families inet_protocols enables.
func protocols(value string) (v4, v6 bool) {
	for _, p := range SplitList(value) {
		switch p {
		case "all":
			v4, v6 = true, true
		case "ipv4":
			v4 = true
		case "ipv6":
			v6 = true
		}
	}
	return v4, v6
}

// defaultMynetworks computes mynetworks from mynetworks_style the way
// Postfix does: the machine's own addresses (host), their subnets (subnet)
// or their class A/B/C networks (class), IPv4 before IPv6.
func defaultMynetworks(style, inetProtocols string, addrs []net.Addr) string {
	v4on, v6on := protocols(inetProtocols)
	var v4, v6 []string
	seen := map[string]bool{}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipnet.IP
		ones, bits := ipnet.Mask.Size()
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
			if ones > 32 {
				ones -= 96
			}
		}
		switch style {
		case "host":
			ones = bits
		case "class":
			if bits == 32 {
				ones = classPrefix(ip)
			}
		}
		network := ip.Mask(net.CIDRMask(ones, bits))
		var entry string
		if bits == 32 {
			if !v4on {
				continue
			}
			entry = fmt.Sprintf("%s/%d", network, ones)
		} else {
			if !v6on {
				continue
			}
			entry = fmt.Sprintf("[%s]/%d", network, ones)
		}
		if seen[entry] {
			continue
		}
		seen[entry] = true
		if bits == 32 {
			v4 = append(v4, entry)
		} else {
			v6 = append(v6, entry)
		}
	}
	return strings.Join(append(v4, v6...), " ")
}

func classPrefix(ip net.IP) int {
	switch {
	case ip[0] < 128:
		return 8
	case ip[0] < 192:
		return 16
	case ip[0] < 224:
		return 24
	}
	return 32
}

// listenHosts returns the hosts an inet service without an explicit host
// listens on, from inet_interfaces and inet_protocols.
func listenHosts(interfaces, inetProtocols string) []string {
	v4, v6 := protocols(inetProtocols)
	elems := SplitList(interfaces)
	if len(elems) == 1 && elems[0] == "all" {
		switch {
		case v4 && v6:
			return []string{""}
		case v4:
			return []string{"0.0.0.0"}
		case v6:
			return []string{"::"}
		}
		return nil
	}
	if len(elems) == 1 && elems[0] == "loopback-only" {
		var out []string
		if v4 {
			out = append(out, "127.0.0.1")
		}
		if v6 {
			out = append(out, "::1")
		}
		return out
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(e, "["), "]"))
	}
	return out
}

// inetListeners expands the inet services into listen addresses.
func inetListeners(services []Service, interfaces, inetProtocols string) []Listener {
	var out []Listener
	hosts := listenHosts(interfaces, inetProtocols)
	for _, s := range services {
		if s.Type != "inet" {
			continue
		}
		host, port, err := inetEndpoint(s.Name)
		if err != nil {
			continue // rejected by ParseMasterCF already
		}
		if host != "" {
			out = append(out, Listener{Address: net.JoinHostPort(host, port), Service: s.clone()})
			continue
		}
		for _, h := range hosts {
			out = append(out, Listener{Address: net.JoinHostPort(h, port), Service: s.clone()})
		}
	}
	return out
}
