package address

import (
	"strings"
	"testing"
)

// FuzzParsePath checks that the parser never panics and that what it
// accepts is consistent: within the size limits, free of control
// characters, and stable when printed and parsed again.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<user@example.com>", "<>", `<"a b"@x.example>`, "<@a:b@c>", "<u@[IPv6:::1]>", "<用户@例子.广告>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, opts := range []Options{{}, {AllowMissingBrackets: true, AllowUnqualified: true, AllowLooseDots: true}} {
			p, err := opts.ParsePath(s)
			if err != nil {
				continue
			}
			if p.Null {
				if s != "<>" {
					t.Fatalf("%q parsed as null path", s)
				}
				continue
			}
			if len(p.Local) > MaxLocalLength || len(p.Domain) > MaxDomainLength || len(p.String())+2 > MaxPathLength {
				t.Fatalf("%q: accepted over-long address %+v", s, p)
			}
			if strings.ContainsFunc(p.String(), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("%q: accepted control character", s)
			}
			again, err := opts.ParsePath("<" + p.String() + ">")
			if err != nil || again != p {
				t.Fatalf("%q: reparse of %q gave %+v, %v; want %+v", s, p.String(), again, err, p)
			}
		}
	})
}
