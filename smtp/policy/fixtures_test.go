package policy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/dnsres"
	"github.com/yubin-mta/yubin/internal/lookup"
)

// mapTable is a small in-memory lookup.Table for tests.
type mapTable struct {
	name string
	m    map[string]string
	fail bool
}

func (t *mapTable) Name() string { return t.name }
func (t *mapTable) Lookup(key string) (string, bool, error) {
	if t.fail {
		return "", false, errors.New("table unavailable")
	}
	v, ok := t.m[key]
	return v, ok, nil
}

func table(name string, kv ...string) *mapTable {
	t := &mapTable{name: name, m: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		t.m[kv[i]] = kv[i+1]
	}
	return t
}

// fakeResolver answers from maps; names in temp fail with SERVFAIL.
type fakeResolver struct {
	ptr  map[string][]string
	host map[string][]string
	mx   map[string][]string
	temp map[string]bool
}

func (r *fakeResolver) err(name, typ string, kind dnsres.Kind) error {
	return &dnsres.Error{Name: name, Type: typ, Kind: kind}
}

func (r *fakeResolver) LookupPTR(_ context.Context, a netip.Addr) ([]string, error) {
	if r.temp[a.String()] {
		return nil, r.err(a.String(), "PTR", dnsres.ServFail)
	}
	if v, ok := r.ptr[a.String()]; ok {
		return v, nil
	}
	return nil, r.err(a.String(), "PTR", dnsres.NXDomain)
}

func (r *fakeResolver) LookupHost(_ context.Context, h string) ([]netip.Addr, error) {
	if r.temp[h] {
		return nil, r.err(h, "A", dnsres.ServFail)
	}
	v, ok := r.host[h]
	if !ok {
		return nil, r.err(h, "A", dnsres.NXDomain)
	}
	var out []netip.Addr
	for _, s := range v {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (r *fakeResolver) LookupMX(_ context.Context, d string) ([]dnsres.MX, error) {
	if r.temp[d] {
		return nil, r.err(d, "MX", dnsres.ServFail)
	}
	v, ok := r.mx[d]
	if !ok {
		return nil, r.err(d, "MX", dnsres.NoData)
	}
	if len(v) == 1 && v[0] == "." {
		return nil, &dnsres.Error{Name: d, Type: "MX", Kind: dnsres.NullMX, Err: dnsres.ErrNullMX}
	}
	var out []dnsres.MX
	for _, h := range v {
		out = append(out, dnsres.MX{Host: h, Pref: 10})
	}
	return out, nil
}

func testResolver() *fakeResolver {
	return &fakeResolver{
		ptr: map[string][]string{
			"192.0.2.10": {"mail.client.example."},
			"192.0.2.11": {"forged.example."}, // does not resolve back
		},
		host: map[string][]string{
			"mail.client.example": {"192.0.2.10"},
			"forged.example":      {"192.0.2.99"},
			"a-only.example":      {"192.0.2.50"},
		},
		mx: map[string][]string{
			"remote.example": {"mx.remote.example"},
			"nullmx.example": {"."},
		},
		temp: map[string]bool{"192.0.2.12": true, "tempfail.example": true},
	}
}

func mustDomains(t *testing.T, sub bool, entries ...string) *DomainList {
	t.Helper()
	l, err := NewDomainList(entries, sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testEnv(t *testing.T) *TableEnv {
	return &TableEnv{
		LocalDomains:          mustDomains(t, false, "example.com", "mx.example.com", "[192.0.2.1]"),
		VirtualAliasDomains:   mustDomains(t, false, "valias.example"),
		VirtualMailboxDomains: mustDomains(t, false, "vmbox.example"),
		RelayDomains:          mustDomains(t, true, "relay.example"),
		LocalRecipientMaps:    []lookup.Table{table("hash:/etc/aliases", "alice", "alice", "postmaster", "root", "held", "alice")},
		VirtualAliasMaps:      []lookup.Table{table("hash:/etc/postfix/virtual", "info@valias.example", "alice", "sales@example.com", "alice")},
		VirtualMailboxMaps:    []lookup.Table{table("hash:/etc/postfix/vmailbox", "bob@vmbox.example", "bob/")},
		RelayRecipientMaps:    []lookup.Table{table("hash:/etc/postfix/relay_recipients", "carol@relay.example", "x")},
		RecipientDelimiter:    "+",
	}
}

// tables available to check_*_access in tests by name.
func testTables() map[string]lookup.Table {
	return map[string]lookup.Table{
		"hash:/etc/postfix/client_access": table("hash:/etc/postfix/client_access",
			"192.0.2.66", "REJECT",
			"198.51.100", "REJECT Go away",
			"mail.client.example", "OK",
			"203.0.113.5", "DEFER",
			"203.0.113.6", "450 4.7.0 Slow down",
			"203.0.113.7", "550 No thanks",
			"203.0.113.8", "DEFER_IF_PERMIT Greylisted",
			"203.0.113.9", "DEFER_IF_REJECT Maybe later",
			"203.0.113.10", "HOLD",
			"203.0.113.11", "DISCARD",
			"203.0.113.12", "REDIRECT spam@example.com",
			"203.0.113.13", "FILTER smtp:[127.0.0.1]:10025",
			"203.0.113.14", "PREPEND X-Client: suspicious",
			"203.0.113.15", "permissive",
			"203.0.113.16", "reject_unauth_destination",
			"203.0.113.17", "BOGUS action",
			"203.0.113.18", "12345",
			"203.0.113.19", "WARN looks odd",
		),
		"hash:/etc/postfix/sender_access": table("hash:/etc/postfix/sender_access",
			"spammer@bad.example", "REJECT",
			"bad.example", "554 5.7.0 Domain blacklisted",
			"example.net", "REJECT Parent match",
			"<>", "550 No bounces here",
			"noreply@", "DEFER",
		),
		"hash:/etc/postfix/recipient_access": table("hash:/etc/postfix/recipient_access",
			"blocked@example.com", "REJECT",
			"held@example.com", "HOLD",
			"dunno@remote.example", "DUNNO",
			"ok@remote.example", "OK",
		),
		"hash:/etc/postfix/helo_access": table("hash:/etc/postfix/helo_access",
			"localhost", "REJECT You are not me",
			"bad.example", "REJECT",
		),
		"cidr:/etc/postfix/client.cidr": table("cidr:/etc/postfix/client.cidr", "192.0.2.66", "REJECT CIDR match"),
		"hash:/etc/postfix/broken":      &mapTable{name: "hash:/etc/postfix/broken", fail: true},
	}
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	nets, err := ParseNetworks([]string{"127.0.0.0/8 [::1]/128"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.MyNetworks = nets
	cfg.Env = testEnv(t)
	tables := testTables()
	cfg.OpenTable = func(spec string) (lookup.Table, error) {
		if tb, ok := tables[spec]; ok {
			return tb, nil
		}
		return nil, errors.New("no such table")
	}
	cfg.Resolver = testResolver()
	return cfg
}

func client(ip string) Client {
	return Client{Addr: netip.MustParseAddr(ip), Name: "unknown", Helo: "client.example"}
}

func replyString(r Result) string {
	if r.Reply == nil {
		return ""
	}
	return r.Reply.String()
}

func events(r Result) string {
	var parts []string
	for _, e := range r.Events {
		parts = append(parts, e.Action+": "+e.Text)
	}
	return strings.Join(parts, " | ")
}

func openOne(t lookup.Table) func(string) (lookup.Table, error) {
	return func(string) (lookup.Table, error) { return t, nil }
}
