package rewrite

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/queue"
)

func TestAddressClassString(t *testing.T) {
	want := map[AddressClass]string{ClassLocal: "local", ClassVirtualAlias: "virtual_alias",
		ClassVirtualMailbox: "virtual_mailbox", ClassRelay: "relay", ClassDefault: "default", 0: "AddressClass(0)"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

func TestExpandErrorText(t *testing.T) {
	e := expandErr(ErrTable, "u@example.org", "4.3.0", "alias database unavailable", errBroken)
	if got := e.Error(); got != "u@example.org: 4.3.0 alias database unavailable: connection refused" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(e, ErrTable) || !errors.Is(e, errBroken) || !e.Temporary() {
		t.Errorf("kind/cause/temporary not exposed: %v", e)
	}
}

func TestInterfaceAddrs(t *testing.T) {
	got, err := interfaceAddrs([]string{"[192.0.2.1]", "2001:db8::1", "[IPv6:2001:db8::2]", " ", "::ffff:192.0.2.3", "loopback-only"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1", "2001:db8::1", "2001:db8::2", "192.0.2.3", "127.0.0.1", "::1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i] != netip.MustParseAddr(w) {
			t.Errorf("got[%d] = %v, want %v", i, got[i], w)
		}
	}
	all, err := interfaceAddrs([]string{"all"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if !a.IsValid() {
			t.Errorf("invalid address from \"all\": %v", a)
		}
	}
}

func TestRouteQuotedBangPath(t *testing.T) {
	r := mustNew(t, baseSettings())
	checkRoutes(t, r, []routeCase{
		{`"remote!user"@localhost`, "smtp", "remote", "user@remote", ClassDefault, false},
		{`"plain user"@localhost`, "local", "mx.example.com", "", ClassLocal, false},
		// A '%' with nothing after it is no route: delivered locally as is.
		{"x%@localhost", "local", "mx.example.com", "", ClassLocal, true},
	})
}

func TestExpandIncludeNotRegular(t *testing.T) {
	dir := t.TempDir()
	s := aliasSettings(t, "dir", ":include:"+dir, "bad", "ok@example.org, u@-bad.example")
	r := mustNew(t, s)
	got, err := r.Expand(queue.Recipient{Addr: "dir"})
	if err != nil || len(got) != 1 || !errors.Is(got[0].Failure, ErrInclude) || !strings.Contains(got[0].Failure.Text, "not a regular file") {
		t.Errorf("directory include: %q, %v", summary(got), err)
	}
	// A bad target fails only its own branch.
	got, err = r.Expand(queue.Recipient{Addr: "bad"})
	if err != nil {
		t.Fatal(err)
	}
	if s := summary(got); len(s) != 2 || s[0] != "ok@example.org" || s[1] != "!5.1.3:u@-bad.example" {
		t.Errorf("bad target: %q", s)
	}
}
