package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseNetworks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nets")
	if err := os.WriteFile(file, []byte("# trusted\n10.1.0.0/16, 10.2.0.0/16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		list []string
		in   []string
		out  []string
		err  string
	}{
		{list: []string{"127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"},
			in:  []string{"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.5"},
			out: []string{"128.0.0.1", "::2", "192.0.2.1"}},
		{list: []string{"192.0.2.1", "2001:db8::/32"}, in: []string{"192.0.2.1", "2001:db8::5"}, out: []string{"192.0.2.2", "2001:db9::1"}},
		{list: []string{"[2001:db8::1]"}, in: []string{"2001:db8::1"}, out: []string{"2001:db8::2"}},
		{list: []string{"!192.0.2.7", "192.0.2.0/24"}, in: []string{"192.0.2.8"}, out: []string{"192.0.2.7"}},
		{list: []string{file}, in: []string{"10.1.2.3", "10.2.0.1"}, out: []string{"10.3.0.1"}},
		{list: []string{"10.0.0.1/8"}, err: `non-null host address bits in "10.0.0.1/8", perhaps you should use "10.0.0.0/8" instead`},
		{list: []string{"10.0.0.0/33"}, err: "bad prefix length"},
		{list: []string{"10.0.0.0/-1"}, err: "bad prefix length"},
		{list: []string{"not-an-ip"}, err: "bad address"},
		{list: []string{"[::1/128"}, err: "missing ']'"},
		{list: []string{"hash:/etc/postfix/network_table"}, err: "not supported"},
		{list: []string{filepath.Join(dir, "missing")}, err: "no such file"},
	} {
		n, err := ParseNetworks(tc.list)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.list, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.list, err)
			continue
		}
		for _, ip := range tc.in {
			if !n.Contains(mustAddr(ip)) {
				t.Errorf("%v should contain %s", tc.list, ip)
			}
		}
		for _, ip := range tc.out {
			if n.Contains(mustAddr(ip)) {
				t.Errorf("%v should not contain %s", tc.list, ip)
			}
		}
	}
}

func TestNetworksString(t *testing.T) {
	n, err := ParseNetworks([]string{"127.0.0.0/8, [::1]/128 !10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.String(), "127.0.0.0/8 [::1]/128 !10.0.0.1/32"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var nilNets *Networks
	if nilNets.Contains(mustAddr("127.0.0.1")) {
		t.Error("nil Networks contains nothing")
	}
}

func TestStyleNetworks(t *testing.T) {
	ifaces := []netip.Prefix{netip.MustParsePrefix("192.168.5.20/24"), netip.MustParsePrefix("172.16.9.1/20"), netip.MustParsePrefix("2001:db8::7/64")}
	for _, tc := range []struct {
		style   string
		in, out []string
	}{
		{"host", []string{"192.168.5.20", "2001:db8::7"}, []string{"192.168.5.21", "2001:db8::8"}},
		{"subnet", []string{"192.168.5.21", "172.16.0.1", "2001:db8::8"}, []string{"192.168.6.1", "172.16.16.1"}},
		{"class", []string{"192.168.5.99", "172.16.200.1"}, []string{"192.168.6.1", "172.17.0.1"}},
	} {
		n, err := StyleNetworks(tc.style, ifaces)
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range tc.in {
			if !n.Contains(mustAddr(ip)) {
				t.Errorf("%s should contain %s", tc.style, ip)
			}
		}
		for _, ip := range tc.out {
			if n.Contains(mustAddr(ip)) {
				t.Errorf("%s should not contain %s", tc.style, ip)
			}
		}
	}
	if _, err := StyleNetworks("galaxy", ifaces); err == nil {
		t.Error("unknown style accepted")
	}
}

func TestDomainList(t *testing.T) {
	tbl := table("hash:/etc/postfix/relay_domains", "tabled.example", "x")
	l, err := NewDomainList([]string{"Example.COM, .wild.example", "hash:/etc/postfix/relay_domains"}, false, openOne(tbl))
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{
		"example.com": true, "EXAMPLE.com.": true, "sub.example.com": false,
		"a.wild.example": true, "wild.example": false, "tabled.example": true, "x.tabled.example": false, "": false,
	} {
		if got := l.Contains(d); got != want {
			t.Errorf("no subdomains: %q = %v, want %v", d, got, want)
		}
	}
	l, _ = NewDomainList([]string{"example.com", "hash:/etc/postfix/relay_domains"}, true, openOne(tbl))
	for d, want := range map[string]bool{"sub.example.com": true, "x.tabled.example": true, "badexample.com": false} {
		if got := l.Contains(d); got != want {
			t.Errorf("subdomains: %q = %v, want %v", d, got, want)
		}
	}
	if _, err := NewDomainList([]string{"hash:/x"}, false, nil); err == nil {
		t.Error("table without opener accepted")
	}
}
