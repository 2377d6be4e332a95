package rewrite

import (
	"errors"
	"testing"

	"github.com/yubin-mta/yubin/internal/lookup"
)

func TestClass(t *testing.T) {
	s := baseSettings()
	// First match wins, so the exclusion comes before the pattern it narrows.
	s.MyDestination.Patterns = append(s.MyDestination.Patterns, "!bad.intra.example.com", ".intra.example.com")
	s.ProxyInterfaces = []string{"[192.0.2.10]"}
	s.VirtualAliasDomains = DomainList{Tables: tables(table("hash:/etc/postfix/virtual", "valias.example", "anything"))}
	s.VirtualMailboxDomains = DomainList{Patterns: []string{"vmbox.example"}}
	s.RelayDomains = DomainList{Patterns: []string{"relay.example"}, Tables: tables(table("hash:relay_domains", "tabled.example", "OK")), MatchSubdomains: true}
	r := mustNew(t, s)
	tests := []struct {
		domain string
		want   AddressClass
	}{
		{"mx.example.com", ClassLocal},
		{"MX.Example.Com.", ClassLocal},
		{"localhost", ClassLocal},
		{"localhost.example.com", ClassLocal},
		{"sub.mx.example.com", ClassDefault}, // mydestination does not match subdomains
		{"a.intra.example.com", ClassLocal},  // ".domain" pattern
		{"bad.intra.example.com", ClassDefault},
		{"[127.0.0.1]", ClassLocal},
		{"[IPv6:::1]", ClassLocal},
		{"[::1]", ClassLocal},
		{"[192.0.2.10]", ClassLocal}, // proxy_interfaces
		{"[192.0.2.11]", ClassDefault},
		{"[not-an-ip]", ClassDefault},
		{"valias.example", ClassVirtualAlias},
		{"sub.valias.example", ClassDefault}, // no parent matching for virtual domains
		{"vmbox.example", ClassVirtualMailbox},
		{"relay.example", ClassRelay},
		{"deep.sub.relay.example", ClassRelay}, // parent_domain_matches_subdomains
		{"tabled.example", ClassRelay},
		{"x.tabled.example", ClassRelay}, // table parent lookup
		{"example.org", ClassDefault},
	}
	for _, tt := range tests {
		got, err := r.Class(tt.domain)
		if err != nil || got != tt.want {
			t.Errorf("Class(%q) = %v, %v; want %v", tt.domain, got, err, tt.want)
		}
	}
}

func TestClassPrecedence(t *testing.T) {
	// ADDRESS_CLASS_README: a domain in several lists gets the first class
	// in the order local, virtual alias, virtual mailbox, relay.
	s := baseSettings()
	both := DomainList{Patterns: []string{"mx.example.com", "dup.example"}}
	s.VirtualAliasDomains, s.VirtualMailboxDomains, s.RelayDomains = both, both, both
	r := mustNew(t, s)
	for domain, want := range map[string]AddressClass{"mx.example.com": ClassLocal, "dup.example": ClassVirtualAlias} {
		if got, err := r.Class(domain); err != nil || got != want {
			t.Errorf("Class(%q) = %v, %v; want %v", domain, got, err, want)
		}
	}
}

func TestDomainListTableKeys(t *testing.T) {
	tests := []struct {
		subdomains bool
		want       []string
	}{
		{false, []string{"a.b.example.com", ".b.example.com", ".example.com", ".com"}},
		{true, []string{"a.b.example.com", "b.example.com", "example.com", "com"}},
	}
	for _, tt := range tests {
		tab := table("hash:x")
		l := DomainList{Tables: []lookup.Table{tab}, MatchSubdomains: tt.subdomains}
		if ok, err := l.Match("a.b.example.com"); ok || err != nil {
			t.Fatalf("Match = %v, %v", ok, err)
		}
		if len(tab.keys) != len(tt.want) {
			t.Fatalf("subdomains=%v keys %q, want %q", tt.subdomains, tab.keys, tt.want)
		}
		for i := range tt.want {
			if tab.keys[i] != tt.want[i] {
				t.Errorf("subdomains=%v keys %q, want %q", tt.subdomains, tab.keys, tt.want)
				break
			}
		}
	}
}

func TestClassTableFailure(t *testing.T) {
	s := baseSettings()
	s.RelayDomains.Tables = []lookup.Table{brokenTable{}}
	r := mustNew(t, s)
	if _, err := r.Class("example.org"); !errors.Is(err, ErrTable) || !errors.Is(err, errBroken) {
		t.Fatalf("Class with broken table: err = %v, want ErrTable wrapping the cause", err)
	}
	if _, err := r.Route("u@example.org"); !errors.Is(err, ErrTable) {
		t.Fatalf("Route with broken table: err = %v, want ErrTable", err)
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
	}{
		{"no hostname", func(s *Settings) { s.MyHostname = "" }},
		{"bad hostname", func(s *Settings) { s.MyHostname = "bad host" }},
		{"null transport", func(s *Settings) { s.RelayTransport = ":[gw.example]" }},
		{"negative limit", func(s *Settings) { s.VirtualAliasRecursionLimit = -1 }},
		{"host name interface", func(s *Settings) { s.InetInterfaces = []string{"mail.example.com"} }},
	}
	for _, tt := range tests {
		s := baseSettings()
		tt.mutate(&s)
		if _, err := New(s); err == nil {
			t.Errorf("%s: New succeeded, want error", tt.name)
		}
	}
}
