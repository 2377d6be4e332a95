package lookup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenTypes(t *testing.T) {
	text := writeFile(t, "transport", "Example.com smtp:[relay.example]\n")
	re := writeFile(t, "checks.re", "/^(.*)@example\\.com$/ $1\n")
	pcre := writeFile(t, "checks.pcre", "/^\\d+$/ digits\n")
	cidr := writeFile(t, "clients.cidr", "192.0.2.0/24 REJECT\n")
	tests := []struct {
		spec  string
		cases []lookupCase
	}{
		{"hash:" + text, []lookupCase{{"EXAMPLE.COM", "smtp:[relay.example]", true}, {"x", "", false}}},
		{"btree:" + text, []lookupCase{{"example.com", "smtp:[relay.example]", true}}},
		{"texthash:" + text, []lookupCase{{"example.com", "smtp:[relay.example]", true}}},
		{"lmdb:" + text, []lookupCase{{"example.com", "smtp:[relay.example]", true}}},
		{"proxy:hash:" + text, []lookupCase{{"example.com", "smtp:[relay.example]", true}}},
		{"regexp:" + re, []lookupCase{{"Bob@Example.com", "Bob", true}}},
		{"pcre:" + pcre, []lookupCase{{"123", "digits", true}, {"12a", "", false}}},
		{"cidr:" + cidr, []lookupCase{{"192.0.2.9", "REJECT", true}}},
		{"regexp:{ {/^a/ A}, {/^b/ B} }", []lookupCase{{"bx", "B", true}}},
		{"cidr:{{192.0.2.0/24 net}}", []lookupCase{{"192.0.2.1", "net", true}}},
		{"inline:{ Key=value, { k2 = value with spaces }, k3=a=b }", []lookupCase{
			{"key", "value", true}, {"K2", "value with spaces", true}, {"k3", "a=b", true}, {"k4", "", false},
		}},
		{"inline:{a={b c}}", []lookupCase{{"a", "{b c}", true}}},
		{"static:OK", []lookupCase{{"anything", "OK", true}}},
		{"static:{ a b }", []lookupCase{{"x", "a b", true}}},
		{"unionmap:{inline:{x=1}, static:2, inline:{y=3}}", []lookupCase{{"x", "1,2", true}, {"y", "2,3", true}}},
	}
	for _, tt := range tests {
		tab, err := Open(tt.spec)
		if err != nil {
			t.Errorf("Open(%q): %v", tt.spec, err)
			continue
		}
		if tab.Name() != tt.spec {
			t.Errorf("Name() = %q, want %q", tab.Name(), tt.spec)
		}
		checkLookups(t, tab, tt.cases)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, "bad", "ok value\nbroken\n")
	tests := []struct{ spec, want string }{
		{"foo:/etc/x", "unsupported dictionary type: foo"},
		{"noColon", `expecting "type:name" form instead of "noColon"`},
		{"hash:", `expecting "type:name" form`},
		{"hash:" + filepath.Join(dir, "missing"), filepath.Join(dir, "missing")},
		{"hash:" + dir, "is a directory"},
		{"hash:" + bad, bad + ":2: expected format: key whitespace value"},
		{"inline:{a}", `missing '=' after attribute name in "a"`},
		{"inline:{a = b}", `missing '=' after attribute name`},
		{"inline:{a=}", "key a: empty value is not allowed"},
		{"inline:{}", "empty table"},
		{"inline:{a=b", "missing '}'"},
		{"inline:{{a=b}c}", "syntax error after '}'"},
		{"inline:a=b", "expected '{'"},
		{"static:{}", "empty static value"},
		{"unionmap:{static:x, bogus:y}", "unsupported dictionary type: bogus"},
		{"regexp:{{/a/}}", "no replacement text"},
	}
	for _, tt := range tests {
		_, err := Open(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) error = %v, want it to contain %q", tt.spec, err, tt.want)
		}
	}
	if _, err := Open("foo:x"); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("Open(foo:x) error %v does not wrap ErrUnsupportedType", err)
	}
}

func TestQuery(t *testing.T) {
	path := writeFile(t, "virtual", "info@example.com alice\n")
	v, ok, err := Query("hash:"+path, "INFO@example.com")
	if err != nil || !ok || v != "alice" {
		t.Fatalf("Query = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := Query("hash:"+path, "nobody"); ok || err != nil {
		t.Fatalf("Query(nobody) = %v, %v", ok, err)
	}
	if _, _, err := Query("nope:x", "k"); err == nil {
		t.Fatal("Query with bad type: want error")
	}
}

func TestIsPattern(t *testing.T) {
	path := writeFile(t, "t", "a b\n")
	for spec, want := range map[string]bool{
		"hash:" + path:           false,
		"regexp:{{/a/ b}}":       true,
		"cidr:{{::1 b}}":         true,
		"static:x":               false,
		"inline:{a=b}":           false,
		"proxy:regexp:{{/a/ b}}": true,
	} {
		tab, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := IsPattern(tab); got != want {
			t.Errorf("IsPattern(%s) = %v, want %v", spec, got, want)
		}
	}
}

// bumpMtime makes sure a rewrite is seen even on coarse-mtime file systems.
func bumpMtime(t *testing.T, path string, step int) {
	t.Helper()
	when := time.Unix(1_700_000_000+int64(step), 0)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestFileTableReload(t *testing.T) {
	path := writeFile(t, "access", "a@example.com OK\n")
	bumpMtime(t, path, 1)
	tab, err := Open("hash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, tab, []lookupCase{{"a@example.com", "OK", true}})

	if err := os.WriteFile(path, []byte("a@example.com REJECT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, path, 2)
	checkLookups(t, tab, []lookupCase{{"a@example.com", "REJECT", true}})

	// A broken edit fails lookups (mail is deferred) until it is fixed.
	if err := os.WriteFile(path, []byte("broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, path, 3)
	if _, _, err := tab.Lookup("a@example.com"); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Fatalf("lookup after broken edit: err = %v, want file:line error", err)
	}
	if err := os.WriteFile(path, []byte("a@example.com DUNNO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, path, 4)
	checkLookups(t, tab, []lookupCase{{"a@example.com", "DUNNO", true}})

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tab.Lookup("a@example.com"); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("lookup after removal: err = %v, want error naming the file", err)
	}
}

func TestFileTableConcurrentReload(t *testing.T) {
	path := writeFile(t, "transport", "example.com v0\n")
	tab, err := Open("texthash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v, ok, err := tab.Lookup("example.com")
				// Files are replaced by rename, so every version is complete.
				if err != nil || !ok || !strings.HasPrefix(v, "v") {
					t.Errorf("Lookup = %q, %v, %v", v, ok, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte("example.com v"+string(rune('0'+i%10))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		bumpMtime(t, tmp, i)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
