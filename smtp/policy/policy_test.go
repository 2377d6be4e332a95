package policy

import (
	"context"
	"strings"
	"testing"
)

func TestCheckRecipient(t *testing.T) {
	type tc struct {
		name      string
		configure func(*Config)
		client    Client
		sender    string
		rcpt      string
		want      string // reply, "" for accepted
		events    string // expected events, "" for none
	}
	outside := client("192.0.2.200")
	named := Client{Addr: outside.Addr, Name: "mail.client.example", Helo: "mail.client.example"}
	clientFrom := func(ip string) Client { c := client(ip); return c }
	withClient := func(list ...string) func(*Config) {
		return func(c *Config) { c.ClientRestrictions = list }
	}
	withRcpt := func(list ...string) func(*Config) {
		return func(c *Config) { c.RecipientRestrictions = list }
	}
	withSender := func(list ...string) func(*Config) {
		return func(c *Config) { c.SenderRestrictions = list }
	}
	withHelo := func(list ...string) func(*Config) {
		return func(c *Config) { c.HeloRestrictions = list }
	}
	cases := []tc{
		// Defaults: relay control and recipient validation.
		{name: "local user accepted", client: outside, sender: "s@remote.example", rcpt: "alice@example.com"},
		{name: "local user with extension", client: outside, rcpt: "alice+tag@example.com"},
		{name: "unknown local user", client: outside, rcpt: "nobody@example.com",
			want: "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table"},
		{name: "virtual alias listed", client: outside, rcpt: "info@valias.example"},
		{name: "virtual alias unlisted", client: outside, rcpt: "x@valias.example",
			want: "550 5.1.1 <x@valias.example>: Recipient address rejected: User unknown in virtual alias table"},
		{name: "virtual mailbox listed", client: outside, rcpt: "bob@vmbox.example"},
		{name: "virtual mailbox unlisted", client: outside, rcpt: "x@vmbox.example",
			want: "550 5.1.1 <x@vmbox.example>: Recipient address rejected: User unknown in virtual mailbox table"},
		{name: "relay recipient listed", client: outside, rcpt: "carol@relay.example"},
		{name: "relay subdomain unlisted", client: outside, rcpt: "dave@sub.relay.example",
			want: "550 5.1.1 <dave@sub.relay.example>: Recipient address rejected: User unknown in relay recipient table"},
		{name: "alias in virtual_alias_maps for local domain", client: outside, rcpt: "sales@example.com"},
		{name: "unlisted check off", client: outside, rcpt: "nobody@example.com",
			configure: func(c *Config) { c.RejectUnlistedRecipient = false }},
		{name: "relay denied (defer by default)", client: outside, rcpt: "u@remote.example",
			want: "450 4.7.1 <u@remote.example>: Relay access denied"},
		{name: "mynetworks may relay", client: client("127.0.0.2"), rcpt: "u@remote.example"},
		{name: "mynetworks IPv6 may relay", client: client("::1"), rcpt: "u@remote.example"},
		{name: "mapped IPv4 in mynetworks", client: client("::ffff:127.0.0.1"), rcpt: "u@remote.example"},
		{name: "sasl may relay", client: Client{Addr: outside.Addr, Name: "unknown", SASLUser: "alice"}, rcpt: "u@remote.example"},
		{name: "reject_unauth_destination", configure: func(c *Config) {
			c.RelayRestrictions = []string{"permit_mynetworks, reject_unauth_destination"}
		}, client: outside, rcpt: "u@remote.example", want: "554 5.7.1 <u@remote.example>: Relay access denied"},
		{name: "address literal of ours is local", client: outside, rcpt: "alice@[192.0.2.1]"},
		{name: "unqualified postmaster is local", client: outside, rcpt: "postmaster"},
		// Generic restrictions and their wording per list.
		{name: "reject in client list", configure: withClient("reject"), client: outside, rcpt: "alice@example.com",
			want: "554 5.7.1 <unknown[192.0.2.200]>: Client host rejected: Access denied"},
		{name: "reject in helo list", configure: withHelo("reject"), client: outside, rcpt: "alice@example.com",
			want: "554 5.7.1 <client.example>: Helo command rejected: Access denied"},
		{name: "reject in sender list", configure: withSender("reject"), client: outside, sender: "s@x.example", rcpt: "alice@example.com",
			want: "554 5.7.1 <s@x.example>: Sender address rejected: Access denied"},
		{name: "reject in recipient list", configure: withRcpt("reject"), client: outside, rcpt: "alice@example.com",
			want: "554 5.7.1 <alice@example.com>: Recipient address rejected: Access denied"},
		{name: "defer", configure: withRcpt("defer"), client: outside, rcpt: "alice@example.com",
			want: "450 4.7.1 <alice@example.com>: Recipient address rejected: Try again later"},
		{name: "permit ends only its list", configure: func(c *Config) {
			c.ClientRestrictions = []string{"permit"}
			c.RecipientRestrictions = []string{"reject"}
		}, client: outside, rcpt: "alice@example.com", want: "554 5.7.1 <alice@example.com>: Recipient address rejected: Access denied"},
		{name: "permit in recipient list does not bypass relay list", configure: withRcpt("permit"),
			client: outside, rcpt: "u@remote.example", want: "450 4.7.1 <u@remote.example>: Relay access denied"},
		{name: "permit_auth_destination", configure: func(c *Config) {
			c.RelayRestrictions = []string{"permit_auth_destination", "reject"}
		}, client: outside, rcpt: "alice@example.com"},
		{name: "warn_if_reject", configure: withClient("warn_if_reject", "reject"), client: outside, rcpt: "alice@example.com",
			events: "reject_warning: 554 5.7.1 <unknown[192.0.2.200]>: Client host rejected: Access denied"},
		{name: "warn_if_reject only affects the next restriction", configure: withClient("warn_if_reject", "permit_mynetworks", "reject"),
			client: outside, rcpt: "alice@example.com", want: "554 5.7.1 <unknown[192.0.2.200]>: Client host rejected: Access denied"},
		{name: "defer_if_permit restriction", configure: withClient("defer_if_permit"), client: outside, rcpt: "alice@example.com",
			want: "450 4.7.1 <unknown[192.0.2.200]>: Client host rejected: Service unavailable"},
		{name: "reject_unauth_pipelining is accepted", configure: withClient("reject_unauth_pipelining"), client: outside, rcpt: "alice@example.com"},
		// Restriction classes.
		{name: "restriction class", configure: func(c *Config) {
			c.RestrictionClasses = map[string][]string{"strict": {"reject_unknown_client_hostname"}}
			c.ClientRestrictions = []string{"strict"}
		}, client: outside, rcpt: "alice@example.com",
			want: "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.200]"},
		{name: "class from access table value", configure: func(c *Config) {
			c.RestrictionClasses = map[string][]string{"permissive": {"permit"}}
			c.ClientRestrictions = []string{"check_client_access hash:/etc/postfix/client_access", "reject"}
		}, client: clientFrom("203.0.113.15"), rcpt: "alice@example.com"},
		// check_client_access and the access(5) actions.
		{name: "client access REJECT by address", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("192.0.2.66"), rcpt: "alice@example.com",
			want: "554 5.7.1 <unknown[192.0.2.66]>: Client host rejected: Access denied"},
		{name: "client access REJECT text by network", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("198.51.100.7"), rcpt: "alice@example.com",
			want: "554 5.7.1 <unknown[198.51.100.7]>: Client host rejected: Go away"},
		{name: "client access OK by name", configure: withClient("check_client_access hash:/etc/postfix/client_access", "reject"),
			client: named, rcpt: "alice@example.com"},
		{name: "client access DEFER", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.5"), rcpt: "alice@example.com",
			want: "450 4.7.1 <unknown[203.0.113.5]>: Client host rejected: Access denied"},
		{name: "client access 4NN with DSN", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.6"), rcpt: "alice@example.com",
			want: "450 4.7.0 <unknown[203.0.113.6]>: Client host rejected: Slow down"},
		{name: "client access 5NN", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.7"), rcpt: "alice@example.com",
			want: "550 5.7.1 <unknown[203.0.113.7]>: Client host rejected: No thanks"},
		{name: "DEFER_IF_PERMIT defers an accepted request", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.8"), rcpt: "alice@example.com",
			want: "450 4.7.1 <unknown[203.0.113.8]>: Client host rejected: Greylisted"},
		{name: "DEFER_IF_PERMIT loses to a later reject", configure: func(c *Config) {
			c.ClientRestrictions = []string{"check_client_access hash:/etc/postfix/client_access"}
			c.RecipientRestrictions = []string{"reject"}
		}, client: clientFrom("203.0.113.8"), rcpt: "alice@example.com",
			want: "554 5.7.1 <alice@example.com>: Recipient address rejected: Access denied"},
		{name: "DEFER_IF_REJECT turns a later reject into defer", configure: func(c *Config) {
			c.ClientRestrictions = []string{"check_client_access hash:/etc/postfix/client_access"}
			c.RecipientRestrictions = []string{"reject"}
		}, client: clientFrom("203.0.113.9"), rcpt: "alice@example.com",
			want: "450 4.7.1 <unknown[203.0.113.9]>: Client host rejected: Maybe later"},
		{name: "DEFER_IF_REJECT without reject accepts", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.9"), rcpt: "alice@example.com"},
		{name: "HOLD", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.10"), rcpt: "alice@example.com",
			events: "hold: <unknown[203.0.113.10]>: Client host triggers HOLD action"},
		{name: "DISCARD", configure: withClient("check_client_access hash:/etc/postfix/client_access", "reject"),
			client: clientFrom("203.0.113.11"), rcpt: "alice@example.com",
			events: "discard: <unknown[203.0.113.11]>: Client host triggers DISCARD action"},
		{name: "REDIRECT", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.12"), rcpt: "alice@example.com",
			events: "redirect: <unknown[203.0.113.12]>: Client host triggers REDIRECT spam@example.com"},
		{name: "FILTER is ignored with a warning", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.13"), rcpt: "alice@example.com",
			events: "warning: hash:/etc/postfix/client_access: FILTER smtp:[127.0.0.1]:10025 is not supported; ignored"},
		{name: "PREPEND", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.14"), rcpt: "alice@example.com"},
		{name: "restriction name as value", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.16"), rcpt: "u@remote.example",
			want: "554 5.7.1 <u@remote.example>: Relay access denied"},
		{name: "unknown action is a configuration error", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.17"), rcpt: "alice@example.com", want: "451 4.3.5 Server configuration error",
			events: `warning: hash:/etc/postfix/client_access: unknown action "BOGUS action" for key "203.0.113.17"`},
		{name: "all-numerical value is OK", configure: withClient("check_client_access hash:/etc/postfix/client_access", "reject"),
			client: clientFrom("203.0.113.18"), rcpt: "alice@example.com"},
		{name: "WARN", configure: withClient("check_client_access hash:/etc/postfix/client_access"),
			client: clientFrom("203.0.113.19"), rcpt: "alice@example.com",
			events: "warn: <unknown[203.0.113.19]>: Client host looks odd"},
		{name: "cidr table gets only the full address", configure: withClient("check_client_access cidr:/etc/postfix/client.cidr"),
			client: clientFrom("192.0.2.66"), rcpt: "alice@example.com",
			want: "554 5.7.1 <unknown[192.0.2.66]>: Client host rejected: CIDR match"},
		{name: "table failure", configure: withClient("check_client_access hash:/etc/postfix/broken"),
			client: outside, rcpt: "alice@example.com", want: "451 4.3.0 <unknown[192.0.2.200]>: Temporary lookup failure",
			events: `warning: hash:/etc/postfix/broken lookup error for "192.0.2.200": table unavailable`},
		// check_sender_access.
		{name: "sender full address", configure: withSender("check_sender_access hash:/etc/postfix/sender_access"),
			client: outside, sender: "spammer@bad.example", rcpt: "alice@example.com",
			want: "554 5.7.1 <spammer@bad.example>: Sender address rejected: Access denied"},
		{name: "sender domain with DSN in text", configure: withSender("check_sender_access hash:/etc/postfix/sender_access"),
			client: outside, sender: "other@bad.example", rcpt: "alice@example.com",
			want: "554 5.7.0 <other@bad.example>: Sender address rejected: Domain blacklisted"},
		{name: "sender parent domain", configure: withSender("check_sender_access hash:/etc/postfix/sender_access"),
			client: outside, sender: "x@mail.example.net", rcpt: "alice@example.com",
			want: "554 5.7.1 <x@mail.example.net>: Sender address rejected: Parent match"},
		{name: "sender user@ key", configure: withSender("check_sender_access hash:/etc/postfix/sender_access"),
			client: outside, sender: "noreply@anything.example", rcpt: "alice@example.com",
			want: "450 4.7.1 <noreply@anything.example>: Sender address rejected: Access denied"},
		{name: "null sender key", configure: withSender("check_sender_access hash:/etc/postfix/sender_access"),
			client: outside, sender: "", rcpt: "alice@example.com",
			want: "550 5.7.1 <>: Sender address rejected: No bounces here"},
		// check_recipient_access and check_helo_access.
		{name: "recipient access REJECT", configure: withRcpt("check_recipient_access hash:/etc/postfix/recipient_access"),
			client: outside, rcpt: "blocked@example.com",
			want: "554 5.7.1 <blocked@example.com>: Recipient address rejected: Access denied"},
		{name: "recipient access HOLD", configure: withRcpt("check_recipient_access hash:/etc/postfix/recipient_access"),
			client: outside, rcpt: "held@example.com",
			events: "hold: <held@example.com>: Recipient address triggers HOLD action"},
		{name: "recipient access OK in recipient list cannot open relay", configure: withRcpt("check_recipient_access hash:/etc/postfix/recipient_access"),
			client: outside, rcpt: "ok@remote.example", want: "450 4.7.1 <ok@remote.example>: Relay access denied"},
		{name: "helo access", configure: withHelo("check_helo_access hash:/etc/postfix/helo_access"),
			client: Client{Addr: outside.Addr, Name: "unknown", Helo: "localhost"}, rcpt: "alice@example.com",
			want: "554 5.7.1 <localhost>: Helo command rejected: You are not me"},
		{name: "helo access parent domain", configure: withHelo("check_helo_access hash:/etc/postfix/helo_access"),
			client: Client{Addr: outside.Addr, Name: "unknown", Helo: "x.bad.example"}, rcpt: "alice@example.com",
			want: "554 5.7.1 <x.bad.example>: Helo command rejected: Access denied"},
		// DNS and syntax restrictions.
		{name: "unknown sender domain", configure: withSender("reject_unknown_sender_domain"),
			client: outside, sender: "s@nowhere.example", rcpt: "alice@example.com",
			want: "450 4.1.8 <s@nowhere.example>: Sender address rejected: Domain not found"},
		{name: "unknown sender domain 550", configure: func(c *Config) {
			c.SenderRestrictions = []string{"reject_unknown_sender_domain"}
			c.Codes.UnknownAddress = 550
		}, client: outside, sender: "s@nowhere.example", rcpt: "alice@example.com",
			want: "550 5.1.8 <s@nowhere.example>: Sender address rejected: Domain not found"},
		{name: "sender domain with MX", configure: withSender("reject_unknown_sender_domain"),
			client: outside, sender: "s@remote.example", rcpt: "alice@example.com"},
		{name: "sender domain with A only", configure: withSender("reject_unknown_sender_domain"),
			client: outside, sender: "s@a-only.example", rcpt: "alice@example.com"},
		{name: "sender domain null MX", configure: withSender("reject_unknown_sender_domain"),
			client: outside, sender: "s@nullmx.example", rcpt: "alice@example.com",
			want: "556 5.1.10 <s@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)"},
		{name: "sender domain temp failure defers", configure: withSender("reject_unknown_sender_domain"),
			client: outside, sender: "s@tempfail.example", rcpt: "alice@example.com",
			want: "450 4.1.8 <s@tempfail.example>: Sender address rejected: Domain not found"},
		{name: "sender domain temp failure then reject", configure: func(c *Config) {
			c.SenderRestrictions = []string{"reject_unknown_sender_domain"}
			c.RecipientRestrictions = []string{"reject"}
		}, client: outside, sender: "s@tempfail.example", rcpt: "alice@example.com",
			want: "554 5.7.1 <alice@example.com>: Recipient address rejected: Access denied"},
		{name: "null sender skips domain check", configure: withSender("reject_unknown_sender_domain"),
			client: outside, rcpt: "alice@example.com"},
		{name: "unknown recipient domain", configure: func(c *Config) {
			c.RelayRestrictions = []string{"permit"}
			c.RecipientRestrictions = []string{"reject_unknown_recipient_domain"}
		}, client: outside, rcpt: "u@nowhere.example",
			want: "450 4.1.2 <u@nowhere.example>: Recipient address rejected: Domain not found"},
		{name: "unknown client hostname", configure: withClient("reject_unknown_client_hostname"),
			client: outside, rcpt: "alice@example.com",
			want: "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.200]"},
		{name: "known client hostname", configure: withClient("reject_unknown_client_hostname"),
			client: named, rcpt: "alice@example.com"},
		{name: "client hostname temp failure", configure: withClient("reject_unknown_client_hostname"),
			client: Client{Addr: outside.Addr, Name: "unknown", NameTempFail: true}, rcpt: "alice@example.com",
			want: "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.200]"},
		{name: "non-fqdn sender", configure: withSender("reject_non_fqdn_sender"),
			client: outside, sender: "s@localhost", rcpt: "alice@example.com",
			want: "504 5.5.2 <s@localhost>: Sender address rejected: need fully-qualified address"},
		{name: "non-fqdn recipient", configure: withRcpt("reject_non_fqdn_recipient"),
			client: outside, rcpt: "postmaster",
			want: "504 5.5.2 <postmaster>: Recipient address rejected: need fully-qualified address"},
		{name: "non-fqdn helo", configure: withHelo("reject_non_fqdn_helo_hostname"),
			client: Client{Addr: outside.Addr, Name: "unknown", Helo: "myhost"}, rcpt: "alice@example.com",
			want: "504 5.5.2 <myhost>: Helo command rejected: need fully-qualified hostname"},
		{name: "helo address literal is fine", configure: withHelo("reject_non_fqdn_helo_hostname", "reject_invalid_helo_hostname"),
			client: Client{Addr: outside.Addr, Name: "unknown", Helo: "[192.0.2.200]"}, rcpt: "alice@example.com"},
		{name: "invalid helo", configure: withHelo("reject_invalid_helo_hostname"),
			client: Client{Addr: outside.Addr, Name: "unknown", Helo: "bad_host!"}, rcpt: "alice@example.com",
			want: "501 5.5.2 <bad_host!>: Helo command rejected: Invalid name"},
		{name: "explicit reject_unlisted_recipient", configure: func(c *Config) {
			c.RejectUnlistedRecipient = false
			c.RecipientRestrictions = []string{"reject_unlisted_recipient"}
		}, client: outside, rcpt: "nobody@example.com",
			want: "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			if c.configure != nil {
				c.configure(&cfg)
			}
			chk, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := chk.CheckRecipient(context.Background(), &Transaction{Client: c.client, Sender: c.sender, Recipient: c.rcpt})
			if got := replyString(res); got != c.want {
				t.Errorf("reply %q, want %q", got, c.want)
			}
			if got := events(res); got != c.events {
				t.Errorf("events %q, want %q", got, c.events)
			}
		})
	}
}

func TestActionSideEffects(t *testing.T) {
	cfg := testConfig(t)
	cfg.ClientRestrictions = []string{"check_client_access hash:/etc/postfix/client_access"}
	chk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	check := func(ip string) Result {
		return chk.CheckRecipient(context.Background(), &Transaction{Client: client(ip), Recipient: "alice@example.com"})
	}
	if r := check("203.0.113.10"); !r.Hold || r.Reply != nil {
		t.Errorf("HOLD: %+v", r)
	}
	if r := check("203.0.113.11"); !r.Discard || r.Reply != nil {
		t.Errorf("DISCARD: %+v", r)
	}
	if r := check("203.0.113.12"); r.Redirect != "spam@example.com" {
		t.Errorf("REDIRECT: %+v", r)
	}
	if r := check("203.0.113.14"); len(r.Prepend) != 1 || r.Prepend[0] != "X-Client: suspicious" {
		t.Errorf("PREPEND: %+v", r)
	}
}

// TestOpenRelayMatrix: with the default configuration, a client outside
// mynetworks can relay nowhere, however the address is disguised.
func TestOpenRelayMatrix(t *testing.T) {
	for _, relayList := range [][]string{
		nil, // Postfix default: defer_unauth_destination
		{"permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"},
	} {
		cfg := testConfig(t)
		if relayList != nil {
			cfg.RelayRestrictions = relayList
		}
		chk, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, rcpt := range []string{
			"user@remote.example",
			"user%remote.example@example.com",
			`"user@remote.example"@example.com`,
			"user@remote.example@example.com",
			"@example.com:user@remote.example",
			"@example.com,@mx.example.com:user@remote.example",
			"remote.example!user@example.com",
			"user@[198.51.100.4]",
			"user@[IPv6:2001:db8::1]",
			"user@remote.example.",
			"user@REMOTE.example",
			"user@example.com.remote.example",
		} {
			res := chk.CheckRecipient(context.Background(), &Transaction{Client: client("192.0.2.200"), Sender: "s@remote.example", Recipient: rcpt})
			if res.Reply == nil || !strings.Contains(res.Reply.Text, "Relay access denied") {
				t.Errorf("relay list %v: %s accepted or wrongly refused: %q", relayList, rcpt, replyString(res))
			}
		}
	}
}

func TestCheckData(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataRestrictions = []string{"reject_unauth_pipelining", "reject_multi_recipient_bounce"}
	chk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := chk.CheckData(context.Background(), &Transaction{Client: client("192.0.2.200"), NumRecipients: 2})
	if got, want := replyString(res), "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	res = chk.CheckData(context.Background(), &Transaction{Client: client("192.0.2.200"), Sender: "s@x.example", NumRecipients: 2})
	if res.Reply != nil {
		t.Errorf("non-bounce rejected: %q", replyString(res))
	}
	cfg.DataRestrictions = []string{"reject"}
	chk, _ = New(cfg)
	res = chk.CheckData(context.Background(), &Transaction{Client: client("192.0.2.200"), NumRecipients: 1})
	if got, want := replyString(res), "554 5.7.1 <DATA>: Data command rejected: Access denied"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		want      string
	}{
		{"unknown restriction", func(c *Config) { c.RecipientRestrictions = []string{"permit_everyone"} }, `smtpd_recipient_restrictions: unknown restriction "permit_everyone"`},
		{"missing table", func(c *Config) { c.ClientRestrictions = []string{"check_client_access"} }, "needs a TYPE:NAME"},
		{"table not opening", func(c *Config) { c.ClientRestrictions = []string{"check_client_access hash:/nope"} }, "no such table"},
		{"not a table", func(c *Config) { c.ClientRestrictions = []string{"check_client_access", "permit"} }, "not a TYPE:NAME"},
		{"dns without resolver", func(c *Config) {
			c.Resolver = nil
			c.SenderRestrictions = []string{"reject_unknown_sender_domain"}
		}, "needs a DNS resolver"},
		{"bad class name", func(c *Config) { c.RestrictionClasses = map[string][]string{"permit": {"reject"}} }, "not a valid class name"},
		{"bad class body", func(c *Config) { c.RestrictionClasses = map[string][]string{"x": {"nonsense"}} }, "restriction class x"},
	} {
		cfg := testConfig(t)
		tc.configure(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRecursiveClassIsBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.RestrictionClasses = map[string][]string{"a": {"b"}, "b": {"a"}}
	cfg.ClientRestrictions = []string{"a"}
	chk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := chk.CheckRecipient(context.Background(), &Transaction{Client: client("192.0.2.200"), Recipient: "alice@example.com"})
	if got := replyString(res); got != "451 4.3.5 Server configuration error" {
		t.Errorf("got %q", got)
	}
}

func TestVerifyRecipient(t *testing.T) {
	chk, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if r := chk.VerifyRecipient("alice@example.com"); r != nil {
		t.Errorf("alice: %v", r)
	}
	if r := chk.VerifyRecipient("zed@example.com"); r == nil || r.Code != 550 {
		t.Errorf("zed: %v", r)
	}
}

func TestClientName(t *testing.T) {
	r := testResolver()
	ctx := context.Background()
	for _, tc := range []struct {
		ip       string
		name     string
		tempFail bool
	}{
		{"192.0.2.10", "mail.client.example", false},
		{"192.0.2.11", "unknown", false}, // PTR does not resolve back
		{"192.0.2.12", "unknown", true},  // SERVFAIL
		{"192.0.2.13", "unknown", false}, // no PTR
	} {
		name, temp := ClientName(ctx, r, mustAddr(tc.ip))
		if name != tc.name || temp != tc.tempFail {
			t.Errorf("%s: %q %v, want %q %v", tc.ip, name, temp, tc.name, tc.tempFail)
		}
	}
	if name, _ := ClientName(ctx, nil, mustAddr("127.0.0.1")); name != "unknown" {
		t.Errorf("nil resolver: %q", name)
	}
}
