package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/queue"
)

// fuzzRewriter has every feature on, with tables full of loops.
// append_dot_mydomain is left off: with it, Postfix's rewriting is not
// idempotent ("u@host." keeps its dot away from ".$mydomain" once only).
func fuzzRewriter(t testing.TB) *Rewriter {
	s := DefaultSettings("mx.example.com")
	s.InetInterfaces = []string{"loopback-only"}
	s.RecipientDelimiter = "+-"
	s.Relayhost = "[relay.example.net]"
	s.RelayDomains.Patterns = []string{"relay.example"}
	va := table("hash:virtual", "valias.example", "x",
		"a@valias.example", "b@valias.example, a@valias.example",
		"b@valias.example", "a@valias.example, root",
		"@catch.example", "@valias.example")
	s.VirtualAliasMaps = []lookup.Table{va}
	s.VirtualAliasDomains = DomainList{Tables: []lookup.Table{va}}
	s.TransportMaps = tables(table("hash:transport", ".example", "smtp:", "*", ":[gw.example]"))
	s.AliasMaps = tables(table("hash:aliases", "root", "joe, |cmd, /file, a@valias.example", "joe", "root, joe"))
	r, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{"joe", "site!joe", "a%b%c", "@a,@b:u@c", "u@Host.", `"a@b"@c`, "u@", ""} {
		f.Add(s)
	}
	r := fuzzRewriter(f)
	f.Fuzz(func(t *testing.T, addr string) {
		once := r.Canonicalize(addr)
		if twice := r.Canonicalize(once); twice != once {
			t.Errorf("not idempotent: %q -> %q -> %q", addr, once, twice)
		}
	})
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"user%remote@localhost", "a!b@mx.example.com", `"x@y"@localhost`, "joe", "u@[127.0.0.1]", "u@docomo.example", "@", "-x@y.example"} {
		f.Add(s)
	}
	r := fuzzRewriter(f)
	f.Fuzz(func(t *testing.T, addr string) {
		rt, err := r.Route(addr)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("Route(%q): unexpected error kind: %v", addr, err)
			}
			return
		}
		if rt.Transport == "" || rt.Nexthop == "" || !strings.Contains(rt.Recipient, "@") || rt.Class < ClassLocal || rt.Class > ClassDefault {
			t.Fatalf("Route(%q) = %+v: incomplete", addr, rt)
		}
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"a@valias.example", "root", "x+y@catch.example", "joe-ext@localhost", "nobody@valias.example"} {
		f.Add(s)
	}
	r := fuzzRewriter(f)
	f.Fuzz(func(t *testing.T, addr string) {
		list, err := r.Expand(queue.Recipient{Addr: addr})
		var xe *ExpandError
		if err != nil && !errors.As(err, &xe) {
			t.Fatalf("Expand(%q): error is not an *ExpandError: %v", addr, err)
		}
		for _, e := range list {
			if e.Addr == "" {
				t.Fatalf("Expand(%q): empty address in %+v", addr, list)
			}
		}
	})
}
