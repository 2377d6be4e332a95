package config

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseMainCF checks that no main.cf input panics or hangs the parser
// and the expansion of what it parsed.
func FuzzParseMainCF(f *testing.F) {
	f.Add("myhostname = mx1.example.com\nmyorigin = $mydomain\n")
	f.Add("mydestination = $myhostname,\n  localhost.$mydomain\n# c\n")
	f.Add("a = ${b?{x}:{y}} $(c) ${{$d} <level {2} ? {e} : {f}}\nb = $a\n")
	f.Fuzz(func(t *testing.T, input string) {
		entries, _, err := ParseMainCF(strings.NewReader(input), "main.cf")
		if err != nil {
			return
		}
		vars := map[string]string{}
		for _, e := range entries {
			if e.Name == "" || strings.ContainsAny(e.Name, " \t") {
				t.Fatalf("bad entry name %q", e.Name)
			}
			vars[e.Name] = e.Value
		}
		r := newResolver(func(n string) (string, bool) {
			v, ok := vars[n]
			return v, ok
		}, nil)
		for _, e := range entries {
			_, _ = r.value(e.Name) // errors are fine; panics are not
			_ = SplitList(e.Value)
			_ = referencedNames(e.Value)
		}
	})
}

// FuzzParseMasterCF checks that no master.cf input panics the parser.
func FuzzParseMasterCF(f *testing.F) {
	f.Add(seedDocomoLine)
	f.Add(DefaultMasterCF)
	f.Add("submission inet n - n - - smtpd\n  -o { smtpd_client_restrictions = permit, reject }\n")
	f.Fuzz(func(t *testing.T, input string) {
		services, _, err := ParseMasterCF(bytes.NewReader([]byte(input)), "master.cf", 100)
		if err != nil {
			return
		}
		for _, s := range services {
			if !serviceTypes[s.Type] || s.Command == "" || s.MaxProc < 0 {
				t.Fatalf("accepted bad service %+v", s)
			}
		}
		_ = inetListeners(services, "all", "all")
	})
}
