package rewrite

import (
	"errors"
	"slices"
	"testing"
)

type routeCase struct {
	rcpt      string
	transport string
	nexthop   string
	recipient string // "" means rcpt
	class     AddressClass
	routed    bool
}

func checkRoutes(t *testing.T, r *Rewriter, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		got, err := r.Route(c.rcpt)
		if err != nil {
			t.Errorf("Route(%q): %v", c.rcpt, err)
			continue
		}
		want := Route{Transport: c.transport, Nexthop: c.nexthop, Recipient: c.recipient, Class: c.class, Routed: c.routed}
		if want.Recipient == "" {
			want.Recipient = c.rcpt
		}
		if got != want {
			t.Errorf("Route(%q)\n got %+v\nwant %+v", c.rcpt, got, want)
		}
	}
}

// The expectations in this file were checked against Postfix 3.7's
// trivial-rewrite with the equivalent main.cf.

func TestRouteDefaults(t *testing.T) {
	s := baseSettings()
	s.RelayDomains.Patterns = []string{"relay.example"}
	r := mustNew(t, s)
	checkRoutes(t, r, []routeCase{
		{"joe@mx.example.com", "local", "mx.example.com", "", ClassLocal, false},
		{"joe@localhost", "local", "mx.example.com", "", ClassLocal, false},
		{"u+ext@localhost", "local", "mx.example.com", "", ClassLocal, false},
		{"y@Mx.Example.COM.", "local", "mx.example.com", "y@mx.example.com", ClassLocal, false},
		{"y@[127.0.0.1]", "local", "mx.example.com", "", ClassLocal, false},
		{"u@[IPv6:::1]", "local", "mx.example.com", "", ClassLocal, false},
		// A bare name resolves as user@$myhostname.
		{"joe", "local", "mx.example.com", "joe@mx.example.com", ClassLocal, false},
		// An empty local part is MAILER-DAEMON.
		{"@localhost", "local", "mx.example.com", "MAILER-DAEMON@localhost", ClassLocal, false},
		{"u@example.com", "smtp", "example.com", "", ClassDefault, false},
		{"u@[1.2.3.4]", "smtp", "[1.2.3.4]", "", ClassDefault, false},
		{"u@exa_mple.org", "smtp", "exa_mple.org", "", ClassDefault, false},
		{"x@relay.example", "relay", "relay.example", "", ClassRelay, false},
		{"x@sub.relay.example", "relay", "sub.relay.example", "", ClassRelay, false},
		// Local domains are stripped and routing operators applied to
		// what is left: the percent hack and bang paths relay.
		{"user%remote@mx.example.com", "smtp", "remote", "user@remote", ClassDefault, false},
		{"a!b@localhost", "smtp", "a", "b@a", ClassDefault, false},
		{"x@y@localhost", "smtp", "y", "x@y", ClassDefault, false},
		{`"x@y"@localhost`, "smtp", "y", "x@y", ClassDefault, false},
		{`"x%y"@localhost`, "smtp", "y", "x@y", ClassDefault, false},
		// Routing operators left for a remote host are flagged.
		{"a%b@example.org", "smtp", "example.org", "", ClassDefault, true},
		{"a!b@example.org", "smtp", "example.org", "", ClassDefault, true},
		{`"a@b"@example.org`, "smtp", "example.org", "", ClassDefault, true},
	})
}

func TestRouteBadAddress(t *testing.T) {
	r := mustNew(t, baseSettings())
	for _, rcpt := range []string{"u@", "@", "u@1.2.3.4", "u@-bad.org", "u@a..b", "-foo@example.org", "-foo@localhost", "u@[300.1.1.1]"} {
		if got, err := r.Route(rcpt); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Route(%q) = %+v, %v; want ErrBadAddress", rcpt, got, err)
		}
	}
}

func TestRouteTransportMaps(t *testing.T) {
	s := baseSettings()
	s.RelayDomains.Patterns = []string{"relay.example", "backup.example"}
	s.Relayhost = "[smarthost.example]:587"
	s.RecipientDelimiter = "+"
	s.VirtualAliasDomains.Patterns = []string{"valias.example"}
	s.VirtualMailboxDomains.Patterns = []string{"vmbox.example"}
	s.TransportMaps = tables(table("hash:/etc/postfix/transport",
		// seed 001: docomo.ne.jp needs its own transport, and only the
		// ".domain" key reaches its subdomains.
		"docomo.ne.jp", "docomo-smtp:",
		".docomo.ne.jp", "docomo-smtp:",
		"special@example.org", "error:no such user here",
		"keep.example", ":[10.0.0.1]",
		"noop.example", ":",
		"err.example", "error:",
		"disc.example", "discard:",
		"loc.example", "local:",
		"user@relay.example", "smtp:",
		"backup.example", "smtp:[primary.backup.example]:25",
		"vmbox.example", "lmtp:unix:private/dovecot-lmtp",
		"valias.example", "smtp:",
		"mx.example.com", "local",
	))
	r := mustNew(t, s)
	checkRoutes(t, r, []routeCase{
		{"u@docomo.ne.jp", "docomo-smtp", "docomo.ne.jp", "", ClassDefault, false},
		{"u@mail.docomo.ne.jp", "docomo-smtp", "mail.docomo.ne.jp", "", ClassDefault, false},
		{"u@xdocomo.ne.jp", "smtp", "[smarthost.example]:587", "", ClassDefault, false},
		{"special@example.org", "error", "no such user here", "", ClassDefault, false},
		{"special+x@example.org", "error", "no such user here", "", ClassDefault, false},
		{"keep@keep.example", "smtp", "[10.0.0.1]", "", ClassDefault, false},
		{"n@noop.example", "smtp", "[smarthost.example]:587", "", ClassDefault, false},
		{"e@err.example", "error", "Address is undeliverable", "", ClassDefault, false},
		{"d@disc.example", "discard", "disc.example", "", ClassDefault, false},
		{"l@loc.example", "local", "loc.example", "", ClassDefault, false},
		{"user@relay.example", "smtp", "relay.example", "", ClassRelay, false},
		{"user+ext@relay.example", "smtp", "relay.example", "", ClassRelay, false},
		// relayhost applies to relay_domains mail too.
		{"other@relay.example", "relay", "[smarthost.example]:587", "", ClassRelay, false},
		{"x@backup.example", "smtp", "[primary.backup.example]:25", "", ClassRelay, false},
		// transport_maps never override the virtual alias class.
		{"x@valias.example", "error", "5.1.1 User unknown in virtual alias table", "", ClassVirtualAlias, false},
		{"x@vmbox.example", "lmtp", "unix:private/dovecot-lmtp", "", ClassVirtualMailbox, false},
		// "local" without a colon resets the nexthop to the domain...
		{"root@mx.example.com", "local", "mx.example.com", "", ClassLocal, false},
		// ...while other local domains keep local_transport's nexthop.
		{"root@localhost", "local", "mx.example.com", "", ClassLocal, false},
		{"u@gmail.com", "smtp", "[smarthost.example]:587", "", ClassDefault, false},
	})
}

func TestRouteTransportKeyOrder(t *testing.T) {
	s := baseSettings()
	s.RecipientDelimiter = "+"
	tab := table("hash:transport")
	s.TransportMaps = tables(tab)
	r := mustNew(t, s)
	if _, err := r.Route("User+Ext@Mail.Example.org"); err != nil {
		t.Fatal(err)
	}
	want := []string{"user+ext@mail.example.org", "user@mail.example.org", "mail.example.org", ".example.org", ".org", "*"}
	if !slices.Equal(tab.keys, want) {
		t.Errorf("keys %q\nwant %q", tab.keys, want)
	}

	// With transport_maps in parent_domain_matches_subdomains, parents are
	// looked up without the leading dot.
	s.TransportMatchSubdomains = true
	tab.keys = nil
	if _, err := mustNew(t, s).Route("u@mail.example.org"); err != nil {
		t.Fatal(err)
	}
	want = []string{"u@mail.example.org", "mail.example.org", "example.org", "org", "*"}
	if !slices.Equal(tab.keys, want) {
		t.Errorf("keys %q\nwant %q", tab.keys, want)
	}
}

func TestRouteTransportWildcardAndRegexp(t *testing.T) {
	s := baseSettings()
	s.RecipientDelimiter = "+"
	re := table("regexp:/etc/postfix/transport.re", "u+x@example.org", "re-full:")
	wild := table("hash:/etc/postfix/transport", "*", "smtp:[fallback.example]")
	s.TransportMaps = tables(re, wild)
	r := mustNew(t, s)
	checkRoutes(t, r, []routeCase{
		{"u+x@example.org", "re-full", "example.org", "", ClassDefault, false},
		{"u@example.org", "smtp", "[fallback.example]", "", ClassDefault, false},
		{"root@localhost", "smtp", "[fallback.example]", "", ClassLocal, false},
	})
	// A regexp table only ever sees full addresses (and "*").
	for _, k := range re.keys {
		if k != "*" && k != "u+x@example.org" && k != "u@example.org" && k != "root@localhost" {
			t.Errorf("regexp table was asked for partial key %q", k)
		}
	}
}

// Seed 001: a backup MX relays its primary's domain to the primary host.
func TestRouteBackupMX(t *testing.T) {
	for _, relayhost := range []string{"", "[isp.example.net]"} {
		s := DefaultSettings("mail2.example.com")
		s.InetInterfaces = []string{"loopback-only"}
		s.MyDestination.Patterns = []string{"mail2.example.com", "localhost"}
		s.RelayDomains.Patterns = []string{"example.com"}
		s.RelayTransport = "smtp:primary.example.com"
		s.Relayhost = relayhost
		r := mustNew(t, s)
		other := "other.org"
		if relayhost != "" {
			other = relayhost
		}
		checkRoutes(t, r, []routeCase{
			{"u@example.com", "smtp", "primary.example.com", "", ClassRelay, false},
			{"u@sub.example.com", "smtp", "primary.example.com", "", ClassRelay, false},
			{"u@other.org", "smtp", other, "", ClassDefault, false},
			{"root", "local", "mail2.example.com", "root@mail2.example.com", ClassLocal, false},
		})
	}
}

// Seed 004: a null client sends everything, local mail included, to the
// relayhost, and never delivers locally.
func TestRouteNullClient(t *testing.T) {
	s := DefaultSettings("nc.example.com")
	s.InetInterfaces = []string{"loopback-only"}
	s.MyOrigin = "example.com"
	s.MyDestination = DomainList{}
	s.Relayhost = "example.com"
	s.LocalTransport = "error:local delivery is disabled"
	r := mustNew(t, s)
	if got := r.Canonicalize("user"); got != "user@example.com" {
		t.Errorf("Canonicalize(user) = %q", got)
	}
	checkRoutes(t, r, []routeCase{
		{"user@example.com", "smtp", "example.com", "", ClassDefault, false},
		{"user@nc.example.com", "smtp", "example.com", "", ClassDefault, false},
		{"root@localhost", "smtp", "example.com", "", ClassDefault, false},
		{"root", "smtp", "example.com", "root@nc.example.com", ClassDefault, false},
		{"u@[127.0.0.1]", "error", "local delivery is disabled", "", ClassLocal, false},
		{"x%y@[127.0.0.1]", "smtp", "example.com", "x@y", ClassDefault, false},
	})
}

// Seed 003: the four combinations of relayhost and fallback_relay.
func TestRelayhostFallbackCombinations(t *testing.T) {
	tests := []struct {
		name      string
		relayhost string
		fallback  []string
		want      []string
	}{
		// Deliver directly, nowhere else.
		{"neither", "", nil, []string{"example.org"}},
		// Deliver directly; on failure, hand to the fallback relay.
		{"fallback only", "", []string{"[fallback.example.net]"}, []string{"example.org", "[fallback.example.net]"}},
		// Always via the relayhost, retried there.
		{"relayhost only", "[relay.example.net]", nil, []string{"[relay.example.net]"}},
		// Via the relayhost; on failure, the fallback relay.
		{"both", "[relay.example.net]", []string{"[fallback.example.net]:2525"}, []string{"[relay.example.net]", "[fallback.example.net]:2525"}},
		// Postfix 3.5+ lists: every destination in order, no repeats.
		{"lists", "a.example:587, b.example:587", []string{"c.example d.example", "a.example:587"}, []string{"a.example:587", "b.example:587", "c.example", "d.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSettings()
			s.Relayhost, s.FallbackRelay = tt.relayhost, tt.fallback
			r := mustNew(t, s)
			rt, err := r.Route("u@example.org")
			if err != nil {
				t.Fatal(err)
			}
			if rt.Transport != "smtp" {
				t.Errorf("transport %q, want smtp", rt.Transport)
			}
			if got := r.SMTPDestinations(rt); !slices.Equal(got, tt.want) {
				t.Errorf("SMTPDestinations = %q, want %q", got, tt.want)
			}
			if got := r.FallbackRelay(); !slices.Equal(got, tt.fallback) {
				t.Errorf("FallbackRelay = %q, want %q", got, tt.fallback)
			}
			// Local mail never goes to the relayhost.
			if rt, err := r.Route("root@localhost"); err != nil || rt.Transport != "local" {
				t.Errorf("Route(root@localhost) = %+v, %v", rt, err)
			}
		})
	}
}

func TestRouteTransportMapFailure(t *testing.T) {
	s := baseSettings()
	s.TransportMaps = append(s.TransportMaps, brokenTable{})
	r := mustNew(t, s)
	if _, err := r.Route("u@example.org"); !errors.Is(err, ErrTable) || !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want ErrTable wrapping the cause", err)
	}
}
