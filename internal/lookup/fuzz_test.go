package lookup

import (
	"strings"
	"testing"
)

// FuzzParseTable: the postmap-format parser never panics, and every entry
// it keeps is a folded key with a trimmed, non-empty value that Lookup
// returns under any capitalisation.
func FuzzParseTable(f *testing.F) {
	for _, s := range []string{"a b\n", "Key v a l\n  cont\n# c\n", "foo bar\nfoo baz\n", "onlykey\n", " lead x\n", "k\tv\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseTable("fuzz", strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") && !strings.HasPrefix(err.Error(), "read fuzz:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		for key, value := range m.entries {
			if key != strings.ToLower(key) || key == "" || strings.ContainsAny(key, " \t") {
				t.Fatalf("bad key %q", key)
			}
			if value == "" || value != strings.TrimSpace(value) {
				t.Fatalf("bad value %q for key %q", value, key)
			}
			queries := []string{key}
			if up := strings.ToUpper(key); strings.ToLower(up) == key {
				queries = append(queries, up)
			}
			for _, q := range queries {
				if v, ok, err := m.Lookup(q); err != nil || !ok || v != value {
					t.Fatalf("Lookup(%q) = %q, %v, %v; want %q", q, v, ok, err, value)
				}
			}
		}
	})
}

// FuzzParseRegexp: regexp_table/pcre_table parsing never panics, errors
// carry file:line, and accepted tables answer lookups without errors.
func FuzzParseRegexp(f *testing.F) {
	for _, s := range []string{
		"/^(.*)@example\\.com$/ $1\n",
		"if !/^owner-/\n/^(.*)-outgoing@(.*)$/ 550 Use ${1}@${2} instead\nendif\n",
		"/(a)\\1/ x\n",
		"/a/x y\n",
		"~^[[:alnum:]+/]{60,}$~ OK\n",
		"/ a b # c/x ext\n",
	} {
		f.Add(s, "user-outgoing@example.com")
	}
	f.Fuzz(func(t *testing.T, in, key string) {
		for _, d := range []Dialect{POSIX, PCRE} {
			tab, err := ParseRegexp("fuzz", strings.NewReader(in), d)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "fuzz:") && !strings.HasPrefix(err.Error(), "read fuzz:") {
					t.Fatalf("error without file name: %v", err)
				}
				continue
			}
			for _, k := range []string{key, in, ""} {
				if _, _, err := tab.Lookup(k); err != nil {
					t.Fatalf("Lookup(%q): %v", k, err)
				}
			}
		}
	})
}
