package rewrite

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/queue"
)

// summary renders results as "addr" or "addr>target", failures as
// "!status:addr", owners as "addr(owner)", in result order.
func summary(list []Expanded) []string {
	var out []string
	for _, e := range list {
		s := e.Addr
		if e.Target != "" {
			s += ">" + e.Target
		}
		if e.Owner != "" {
			s += "(" + e.Owner + ")"
		}
		if e.Failure != nil {
			s = "!" + e.Failure.Status + ":" + s
		}
		out = append(out, s)
	}
	return out
}

func expand(t *testing.T, r *Rewriter, addr string) []string {
	t.Helper()
	got, err := r.Expand(queue.Recipient{Addr: addr})
	if err != nil {
		t.Fatalf("Expand(%q): %v", addr, err)
	}
	return summary(got)
}

// virtualSettings has a virtual alias domain and a virtual mailbox domain
// described by one virtual_alias_maps table, as in seed 001.
func virtualSettings(kv ...string) Settings {
	s := baseSettings()
	s.RecipientDelimiter = "+"
	va := table("hash:/etc/postfix/virtual_alias_maps", kv...)
	s.VirtualAliasMaps = []lookup.Table{va}
	s.VirtualAliasDomains = DomainList{Tables: []lookup.Table{va}}
	s.VirtualMailboxDomains = DomainList{Patterns: []string{"vmbox.example"}}
	return s
}

func TestExpandVirtual(t *testing.T) {
	s := virtualSettings(
		"aliase.example.jp", "accept",
		"@aliase.example.jp", "@aliase.mitty.jp", // seed 001 catch-all to another domain
		"valias.example", "accept",
		"postmaster@valias.example", "postmaster",
		"multi@valias.example", "a@example.org, b@example.org  c@example.org",
		"user@valias.example", "other@example.org",
		"exact+tag@valias.example", "tagged@example.org",
		"@catch.example", "catchall@example.org",
		"catch.example", "accept",
		"known@catch.example", "known@example.org",
		// seed 001 forward-and-keep on a virtual mailbox
		"noppi@vmbox.example", "noppi@vmbox.example, keitai@docomo.ne.jp",
		"chain@valias.example", "multi@valias.example, d@example.org",
		"dup@valias.example", "a@example.org, a@example.org",
		"joe", "joe-local@example.org", // bare key: only for local domains
	)
	r := mustNew(t, s)
	tests := []struct {
		rcpt string
		want []string
	}{
		{"any_name_user@ALIASE.example.jp", []string{"any_name_user@aliase.mitty.jp"}},
		{"Mixed+ext@aliase.example.jp", []string{"Mixed+ext@aliase.mitty.jp"}},
		{"postmaster@valias.example", []string{"postmaster@mx.example.com"}},
		{"multi@valias.example", []string{"a@example.org", "b@example.org", "c@example.org"}},
		// propagate_unmatched_extensions = virtual
		{"user+box@valias.example", []string{"other+box@example.org"}},
		{"exact+tag@valias.example", []string{"tagged@example.org"}},
		{"anyone@catch.example", []string{"catchall@example.org"}},
		{"known@catch.example", []string{"known@example.org"}},
		{"noppi@vmbox.example", []string{"noppi@vmbox.example", "keitai@docomo.ne.jp"}},
		{"chain@valias.example", []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"}},
		{"dup@valias.example", []string{"a@example.org"}},
		{"joe@mx.example.com", []string{"joe-local@example.org"}},
		{"joe@example.org", []string{"joe@example.org"}},
		{"nobody@vmbox.example", []string{"nobody@vmbox.example"}},
	}
	for _, tt := range tests {
		if got := expand(t, r, tt.rcpt); !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %q, want %q", tt.rcpt, got, tt.want)
		}
	}
}

func TestExpandVirtualKeyOrder(t *testing.T) {
	s := baseSettings()
	s.RecipientDelimiter = "+"
	tab := table("hash:virtual")
	s.VirtualAliasMaps = []lookup.Table{tab}
	r := mustNew(t, s)
	expand(t, r, "User+Ext@MX.example.com")
	want := []string{"user+ext@mx.example.com", "user@mx.example.com", "user+ext", "user", "@mx.example.com"}
	if !slices.Equal(tab.keys, want) {
		t.Errorf("local domain keys %q\nwant %q", tab.keys, want)
	}
	tab.keys = nil
	expand(t, r, "user+ext@example.org")
	want = []string{"user+ext@example.org", "user@example.org", "@example.org"}
	if !slices.Equal(tab.keys, want) {
		t.Errorf("remote domain keys %q\nwant %q", tab.keys, want)
	}
}

func TestExpandKeepsDSNAndOrigAddr(t *testing.T) {
	r := mustNew(t, virtualSettings("valias.example", "x", "info@valias.example", "a@example.org, info@vmbox.example"))
	in := queue.Recipient{Addr: "info@valias.example", Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;info@valias.example"}
	got, err := r.Expand(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %q", summary(got))
	}
	for _, e := range got {
		if e.OrigAddr != "info@valias.example" || e.Notify != in.Notify || e.ORCPT != in.ORCPT {
			t.Errorf("%+v: want OrigAddr and DSN fields of the original", e.Recipient)
		}
	}
	// An unchanged recipient has no OrigAddr.
	got, err = r.Expand(queue.Recipient{Addr: "u@example.org"})
	if err != nil || len(got) != 1 || got[0].OrigAddr != "" {
		t.Errorf("unchanged recipient: %+v, %v", got, err)
	}
	// A given OrigAddr (set by an earlier rewrite) is kept.
	got, err = r.Expand(queue.Recipient{Addr: "info@valias.example", OrigAddr: "Info@VAlias.example"})
	if err != nil || got[0].OrigAddr != "Info@VAlias.example" {
		t.Errorf("kept OrigAddr: %+v, %v", got, err)
	}
}

func TestExpandVirtualErrors(t *testing.T) {
	chain := []string{"valias.example", "x"}
	for i := range 10 {
		chain = append(chain, "c"+strconv.Itoa(i)+"@valias.example", "c"+strconv.Itoa(i+1)+"@valias.example")
	}
	wide := append(slices.Clone(chain), "wide@valias.example", "a@x.example b@x.example c@x.example d@x.example")
	tests := []struct {
		name      string
		mutate    func(*Settings)
		rcpt      string
		kind      error
		status    string
		temporary bool
	}{
		{"unknown user in virtual alias domain", nil, "nobody@valias.example", ErrUnknownUser, "5.1.1", false},
		{"recursion limit", func(s *Settings) { s.VirtualAliasRecursionLimit = 5 }, "c0@valias.example", ErrNesting, "4.6.0", true},
		{"expansion limit", func(s *Settings) { s.VirtualAliasExpansionLimit = 3 }, "wide@valias.example", ErrExpansionSize, "4.6.0", true},
		{"table failure", func(s *Settings) { s.VirtualAliasMaps = append(s.VirtualAliasMaps, brokenTable{}) }, "u@example.org", ErrTable, "4.3.0", true},
		{"bad address", nil, "u@", ErrBadAddress, "5.1.3", false},
		{"empty address", nil, " ", ErrBadAddress, "5.1.3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := virtualSettings(wide...)
			if tt.mutate != nil {
				tt.mutate(&s)
			}
			got, err := mustNew(t, s).Expand(queue.Recipient{Addr: tt.rcpt})
			var xe *ExpandError
			if !errors.As(err, &xe) || !errors.Is(err, tt.kind) {
				t.Fatalf("Expand(%q) = %q, %v; want %v", tt.rcpt, summary(got), err, tt.kind)
			}
			if xe.Status != tt.status || xe.Temporary() != tt.temporary {
				t.Errorf("status %s temporary %v, want %s %v", xe.Status, xe.Temporary(), tt.status, tt.temporary)
			}
		})
	}
	// Within the limit the chain resolves to its end.
	s := virtualSettings(chain...)
	if got := expand(t, mustNew(t, s), "c0@valias.example"); !slices.Equal(got, []string{"c10@valias.example"}) {
		t.Errorf("chain = %q", got)
	}
}

func TestExpandVirtualLoop(t *testing.T) {
	// a -> b -> a: the address already expanded on this path is kept as is
	// (it then routes to "User unknown in virtual alias table").
	r := mustNew(t, virtualSettings("valias.example", "x",
		"a@valias.example", "b@valias.example",
		"b@valias.example", "a@valias.example, c@example.org"))
	if got := expand(t, r, "a@valias.example"); !slices.Equal(got, []string{"a@valias.example", "c@example.org"}) {
		t.Errorf("loop = %q", got)
	}
}

func aliasSettings(t *testing.T, kv ...string) Settings {
	t.Helper()
	s := baseSettings()
	s.RecipientDelimiter = "+"
	s.AliasMaps = []lookup.Table{table("hash:/etc/aliases", kv...)}
	return s
}

func TestExpandAliases(t *testing.T) {
	s := aliasSettings(t,
		"postmaster", "root",
		"root", `joe, "|/usr/bin/procmail -a root", /var/log/root.mbox`,
		"joe", "joe@example.org",
		// seed 001: keep a copy and forward to the phone
		"noppi", "noppi, keitai@docomo.ne.jp",
		"list", "a@example.org, b@example.org",
		"owner-list", "listadmin",
		"list+special", "special@example.org",
		"escape", `\escape, copy@example.org`,
		"both", "joe jane@example.org",
	)
	r := mustNew(t, s)
	tests := []struct {
		rcpt string
		want []string
	}{
		{"postmaster", []string{"joe@example.org", "root@mx.example.com>|/usr/bin/procmail -a root", "root@mx.example.com>/var/log/root.mbox"}},
		{"Root@MX.example.com", []string{"joe@example.org", "root@mx.example.com>|/usr/bin/procmail -a root", "root@mx.example.com>/var/log/root.mbox"}},
		// "noppi" in the value is noppi@$myorigin, delivered to its mailbox.
		{"noppi@localhost", []string{"noppi@mx.example.com", "keitai@docomo.ne.jp"}},
		{"list@mx.example.com", []string{"a@example.org(owner-list@mx.example.com)", "b@example.org(owner-list@mx.example.com)"}},
		// user+ext first, then user; no extension propagation for aliases.
		{"list+special@mx.example.com", []string{"special@example.org"}},
		{"list+other@mx.example.com", []string{"a@example.org(owner-list@mx.example.com)", "b@example.org(owner-list@mx.example.com)"}},
		{"escape", []string{"escape@mx.example.com", "copy@example.org"}},
		{"both", []string{"joe@example.org", "jane@example.org"}},
		{"nosuch@mx.example.com", []string{"nosuch@mx.example.com"}},
		// aliases apply to the local transport only
		{"root@example.org", []string{"root@example.org"}},
	}
	for _, tt := range tests {
		if got := expand(t, r, tt.rcpt); !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %q\nwant %q", tt.rcpt, got, tt.want)
		}
	}
}

func TestExpandAliasDSN(t *testing.T) {
	r := mustNew(t, aliasSettings(t, "list", "a@example.org", "owner-list", "me", "fwd", "b@example.org"))
	got, err := r.Expand(queue.Recipient{Addr: "list@localhost", Notify: "SUCCESS,DELAY", ORCPT: "rfc822;list@localhost"})
	if err != nil || len(got) != 1 {
		t.Fatalf("%q, %v", summary(got), err)
	}
	e := got[0]
	if e.Alias != "list" || e.Notify != "DELAY" || e.ORCPT != "" || e.Owner != "owner-list@mx.example.com" {
		t.Errorf("list member: %+v", e)
	}
	got, err = r.Expand(queue.Recipient{Addr: "fwd@localhost", Notify: "SUCCESS", ORCPT: "rfc822;fwd@localhost"})
	if err != nil || len(got) != 1 {
		t.Fatalf("%q, %v", summary(got), err)
	}
	if e := got[0]; e.Notify != "NEVER" || e.ORCPT != "rfc822;fwd@localhost" || e.Owner != "" {
		t.Errorf("plain alias: %+v", e)
	}
}

func TestExpandAliasRecursionAndLoops(t *testing.T) {
	r := mustNew(t, aliasSettings(t,
		"a", "b",
		"b", "c@localhost, x@example.org",
		"c", "c-final@example.org",
		"loop1", "loop2",
		"loop2", "loop1, ok@example.org",
	))
	if got := expand(t, r, "a"); !slices.Equal(got, []string{"c-final@example.org", "x@example.org"}) {
		t.Errorf("recursion = %q", got)
	}
	got, err := r.Expand(queue.Recipient{Addr: "loop1"})
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(got); !slices.Equal(s, []string{"!5.4.6:loop1@mx.example.com", "ok@example.org"}) {
		t.Fatalf("loop = %q", s)
	}
	if !errors.Is(got[0].Failure, ErrAliasLoop) || len(Recipients(got)) != 1 {
		t.Errorf("failure %v, deliverable %v", got[0].Failure, Recipients(got))
	}
}

func TestExpandVirtualToLocalAlias(t *testing.T) {
	// Postfix FAQ: a virtual address routed through a local alias to a
	// command, which virtual(5) alone cannot do.
	s := virtualSettings("virtual.tld", "x", "listname@virtual.tld", "listname")
	s.AliasMaps = []lookup.Table{table("hash:/etc/aliases", "listname", `"|/usr/bin/list-handler"`)}
	r := mustNew(t, s)
	got := expand(t, r, "listname@virtual.tld")
	if !slices.Equal(got, []string{"listname@mx.example.com>|/usr/bin/list-handler"}) {
		t.Errorf("got %q", got)
	}
}

func TestExpandAliasForwardReentersVirtual(t *testing.T) {
	s := virtualSettings("valias.example", "x", "team@valias.example", "a@example.org, b@example.org")
	s.AliasMaps = []lookup.Table{table("hash:/etc/aliases", "root", "team@valias.example")}
	if got := expand(t, mustNew(t, s), "root"); !slices.Equal(got, []string{"a@example.org", "b@example.org"}) {
		t.Errorf("got %q", got)
	}
}

func TestExpandNullClientSkipsAliases(t *testing.T) {
	s := aliasSettings(t, "root", "joe@example.org")
	s.LocalTransport = "error:local delivery is disabled"
	if got := expand(t, mustNew(t, s), "root@localhost"); !slices.Equal(got, []string{"root@localhost"}) {
		t.Errorf("got %q", got)
	}
}

func TestExpandAliasRestrictions(t *testing.T) {
	s := aliasSettings(t, "cmd", "|/bin/true", "file", "/tmp/f")
	s.AllowMailToCommands, s.AllowMailToFiles = nil, nil
	r := mustNew(t, s)
	for _, rcpt := range []string{"cmd", "file"} {
		got, err := r.Expand(queue.Recipient{Addr: rcpt})
		if err != nil || len(got) != 1 || !errors.Is(got[0].Failure, ErrRestricted) || got[0].Failure.Status != "5.7.1" {
			t.Errorf("Expand(%q) = %q, %v; want a 5.7.1 restricted failure", rcpt, summary(got), err)
		}
	}
}

func TestExpandInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	members := write("members", "# the team\none@example.org, two@example.org\n\n  three@example.org\nteam\n:include:"+filepath.Join(dir, "members")+"\n", 0o644)
	cmds := write("cmds", "|/usr/bin/vacation\n/var/spool/archive\n", 0o644)
	open := write("open", "x@example.org\n", 0o666)
	s := aliasSettings(t,
		"team", ":include:"+members,
		"cmds", ":include:"+cmds,
		"rel", ":include:members",
		"open", ":include:"+open,
		"missing", ":include:"+filepath.Join(dir, "nope"),
		"nested", "team, extra@example.org",
	)
	r := mustNew(t, s)
	tests := []struct {
		rcpt string
		want []string
	}{
		// The file lists its own alias (mailbox delivery) and includes
		// itself (read once).
		{"team", []string{"one@example.org", "two@example.org", "three@example.org", "team@mx.example.com"}},
		{"nested", []string{"one@example.org", "two@example.org", "three@example.org", "team@mx.example.com", "extra@example.org"}},
		// allow_mail_to_commands/files default to alias, forward: not include.
		{"cmds", []string{"!5.7.1:cmds@mx.example.com"}},
		{"rel", []string{"!5.3.5:rel@mx.example.com"}},
		{"open", []string{"!5.3.5:open@mx.example.com"}},
		{"missing", []string{"!5.3.5:missing@mx.example.com"}},
	}
	for _, tt := range tests {
		if got := expand(t, r, tt.rcpt); !slices.Equal(got, tt.want) {
			t.Errorf("Expand(%q) = %q\nwant %q", tt.rcpt, got, tt.want)
		}
	}
	s.AllowMailToCommands = append(s.AllowMailToCommands, "include")
	s.AllowMailToFiles = append(s.AllowMailToFiles, "include")
	want := []string{"cmds@mx.example.com>|/usr/bin/vacation", "cmds@mx.example.com>/var/spool/archive"}
	if got := expand(t, mustNew(t, s), "cmds"); !slices.Equal(got, want) {
		t.Errorf("with include allowed: %q, want %q", got, want)
	}
}

func TestExpandAliasTableFailure(t *testing.T) {
	s := baseSettings()
	s.AliasMaps = []lookup.Table{brokenTable{}}
	_, err := mustNew(t, s).Expand(queue.Recipient{Addr: "root@localhost"})
	var xe *ExpandError
	if !errors.As(err, &xe) || !xe.Temporary() || !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want temporary ExpandError wrapping the table error", err)
	}
}

func TestExpandFanOutIsBounded(t *testing.T) {
	// Every alias lists the next one twice under different spellings:
	// without memoising, 2^60 paths.
	var kv []string
	for i := range 60 {
		next := "n" + strings.Repeat("x", i+1)
		kv = append(kv, "n"+strings.Repeat("x", i), next+", "+next+"+a")
	}
	s := aliasSettings(t, kv...)
	_, err := mustNew(t, s).Expand(queue.Recipient{Addr: "n"})
	if !errors.Is(err, ErrExpansionSize) {
		t.Fatalf("err = %v, want ErrExpansionSize", err)
	}
}

func TestSplitAliasValue(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a, b,c", []string{"a", "b", "c"}},
		{`"|cmd a, b", /file`, []string{"|cmd a, b", "/file"}},
		{`|/usr/bin/vacation joe`, []string{"|/usr/bin/vacation joe"}},
		{`:include:/etc/list`, []string{":include:/etc/list"}},
		{`"quoted \"x\"", y`, []string{`quoted "x"`, "y"}},
		{" , ,", nil},
	}
	for _, tt := range tests {
		if got := splitAliasValue(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitAliasValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
