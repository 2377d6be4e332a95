package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/lookup"
)

func TestSenderLoginMismatch(t *testing.T) {
	logins := table("hash:/etc/postfix/sender_login",
		"alice@example.com", "alice",
		"shared@example.com", "alice, Bob",
		"@team.example", "carol",
		"dave", "dave", // bare local part: for local domains only
		"erin@remote.example", "erin",
	)
	regexpLogins := table("regexp:/etc/postfix/sender_login.re", "frank@example.org", "frank")
	const (
		notOwned = "553 5.7.1 <%s>: Sender address rejected: not owned by user %s"
		noLogin  = "553 5.7.1 <%s>: Sender address rejected: not logged in"
	)
	reply := func(format, sender string, user ...string) string {
		if len(user) > 0 {
			return strings.Replace(strings.Replace(format, "%s", sender, 1), "%s", user[0], 1)
		}
		return strings.Replace(format, "%s", sender, 1)
	}
	tests := []struct {
		restriction string
		login       string
		sender      string
		want        string
	}{
		// reject_sender_login_mismatch: both directions.
		{"reject_sender_login_mismatch", "alice", "alice@example.com", ""},
		{"reject_sender_login_mismatch", "ALICE", "Alice@Example.COM", ""},
		{"reject_sender_login_mismatch", "bob", "alice@example.com", reply(notOwned, "alice@example.com", "bob")},
		{"reject_sender_login_mismatch", "bob", "shared@example.com", ""},
		{"reject_sender_login_mismatch", "alice", "alice+list@example.com", ""}, // extension stripped
		{"reject_sender_login_mismatch", "carol", "anyone@team.example", ""},    // @domain
		{"reject_sender_login_mismatch", "dave", "dave@example.com", ""},        // local part, local domain
		{"reject_sender_login_mismatch", "dave", "dave@elsewhere.example", reply(notOwned, "dave@elsewhere.example", "dave")},
		{"reject_sender_login_mismatch", "alice", "nobody@nowhere.example", reply(notOwned, "nobody@nowhere.example", "alice")},
		{"reject_sender_login_mismatch", "", "alice@example.com", reply(noLogin, "alice@example.com")},
		{"reject_sender_login_mismatch", "", "stranger@nowhere.example", ""},
		{"reject_sender_login_mismatch", "alice", "", ""},                  // null sender
		{"reject_sender_login_mismatch", "frank", "frank@example.org", ""}, // second (pattern) table
		{"reject_sender_login_mismatch", "frank", "frank+x@example.org", reply(notOwned, "frank+x@example.org", "frank")},
		// The one-sided variants.
		{"reject_authenticated_sender_login_mismatch", "", "alice@example.com", ""},
		{"reject_authenticated_sender_login_mismatch", "bob", "erin@remote.example", reply(notOwned, "erin@remote.example", "bob")},
		{"reject_authenticated_sender_login_mismatch", "bob", "nobody@nowhere.example", reply(notOwned, "nobody@nowhere.example", "bob")},
		{"reject_known_sender_login_mismatch", "bob", "nobody@nowhere.example", ""},
		{"reject_known_sender_login_mismatch", "bob", "erin@remote.example", reply(notOwned, "erin@remote.example", "bob")},
		{"reject_unauthenticated_sender_login_mismatch", "bob", "erin@remote.example", ""},
		{"reject_unauthenticated_sender_login_mismatch", "", "erin@remote.example", reply(noLogin, "erin@remote.example")},
	}
	for _, tt := range tests {
		t.Run(tt.restriction+"/"+tt.login+"/"+tt.sender, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.SenderLoginMaps = []lookup.Table{logins, regexpLogins}
			cfg.RecipientDelimiter = "+"
			cfg.SenderRestrictions = []string{tt.restriction}
			chk, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := client("192.0.2.200")
			c.SASLUser = tt.login
			res := chk.CheckRecipient(context.Background(), &Transaction{Client: c, Sender: tt.sender, Recipient: "alice@example.com"})
			if got := replyString(res); got != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSenderLoginConfiguration(t *testing.T) {
	cfg := testConfig(t)
	cfg.SenderRestrictions = []string{"reject_sender_login_mismatch"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "needs smtpd_sender_login_maps") {
		t.Fatalf("no maps: %v", err)
	}

	// A failing table defers instead of letting the sender through.
	cfg.SenderLoginMaps = []lookup.Table{&mapTable{name: "hash:/etc/postfix/sender_login", fail: true}}
	chk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := chk.CheckRecipient(context.Background(), &Transaction{Client: client("192.0.2.200"), Sender: "a@example.com", Recipient: "alice@example.com"})
	if got := replyString(res); got != "451 4.3.0 <a@example.com>: Temporary lookup failure" || !strings.Contains(events(res), "table unavailable") {
		t.Fatalf("failing table: %q %q", got, events(res))
	}

	// warn_if_reject logs instead of rejecting.
	cfg.SenderLoginMaps = []lookup.Table{table("hash:/etc/postfix/sender_login", "a@example.com", "alice")}
	cfg.SenderRestrictions = []string{"warn_if_reject", "reject_sender_login_mismatch"}
	chk, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res = chk.CheckRecipient(context.Background(), &Transaction{Client: client("192.0.2.200"), Sender: "a@example.com", Recipient: "alice@example.com"})
	if replyString(res) != "" || events(res) != "reject_warning: 553 5.7.1 <a@example.com>: Sender address rejected: not logged in" {
		t.Fatalf("warn_if_reject: %q %q", replyString(res), events(res))
	}

	// Named by an access table without maps: a configuration error at run time.
	cfg = testConfig(t)
	cfg.SenderRestrictions = []string{"check_sender_access", "hash:/etc/postfix/login_check"}
	cfg.OpenTable = openOne(table("hash:/etc/postfix/login_check", "a@example.com", "reject_sender_login_mismatch"))
	chk, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res = chk.CheckRecipient(context.Background(), &Transaction{Client: client("192.0.2.200"), Sender: "a@example.com", Recipient: "alice@example.com"})
	if replyString(res) != "451 4.3.5 Server configuration error" {
		t.Fatalf("runtime config error: %q", replyString(res))
	}
}
