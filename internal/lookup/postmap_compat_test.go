package lookup

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestAgainstPostmap compares our answers with the real "postmap -q" for
// the same source files. It is skipped where Postfix is not installed.
func TestAgainstPostmap(t *testing.T) {
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		t.Skip("postmap not installed; skipping comparison with real Postfix")
	}
	tables := []struct {
		typ, name, content string
		keys               []string
	}{
		{
			typ: "texthash", name: "transport",
			content: "# transport\nExample.COM   smtp:[relay.example]:25\nfoo bar\nfoo baz\nlong first\n  second   part\nuser@example.org\tlocal:\n",
			keys:    []string{"example.com", "EXAMPLE.com", "foo", "long", "user@example.org", "USER@EXAMPLE.ORG", "missing", "second"},
		},
		{
			typ: "regexp", name: "checks",
			content: "/^(.*)-outgoing@(.*)$/ 550 Use ${1}@$2 instead\n!/@/ no-at\nif /@example\\.com$/\n/^postmaster@/ pm\n/^(a)(b)?/ [$1][$2]\nendif\n/^X/i sensitive\n~^[[:alnum:]+/]{6,}$~ b64\n/^a.b$/ dot\n",
			keys:    []string{"list-outgoing@example.org", "plain", "postmaster@example.com", "Postmaster@EXAMPLE.com", "abc@example.com", "ac@example.com", "x@y", "X@y", "abcdef/@x", "a\nb", "zzz@example.com"},
		},
		{
			typ: "cidr", name: "clients",
			content: "192.0.2.0/24 net\n[198.51.100.7] one\n2001:db8::/32 six\n!10.0.0.0/8 not-ten\nif 203.0.113.0/24\n203.0.113.5 five\nendif\n",
			keys:    []string{"192.0.2.1", "198.51.100.7", "2001:db8::1", "10.1.1.1", "172.16.0.1", "::1", "203.0.113.5", "203.0.113.6", "[192.0.2.1]", "mail.example.com"},
		},
	}
	for _, tt := range tables {
		path := writeFile(t, tt.name, tt.content)
		spec := tt.typ + ":" + path
		ours, err := Open(spec)
		if err != nil {
			t.Fatalf("Open(%s): %v", spec, err)
		}
		for _, key := range tt.keys {
			wantValue, wantFound := runPostmap(t, postmap, key, spec)
			v, ok, err := ours.Lookup(key)
			if err != nil {
				t.Errorf("%s: Lookup(%q): %v", tt.typ, key, err)
				continue
			}
			if ok != wantFound || v != wantValue {
				t.Errorf("%s: Lookup(%q) = %q, %v; postmap says %q, %v", tt.typ, key, v, ok, wantValue, wantFound)
			}
		}
	}
}

func runPostmap(t *testing.T, postmap, key, spec string) (string, bool) {
	t.Helper()
	out, err := exec.Command(postmap, "-q", key, spec).Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSuffix(string(out), "\n"), true
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return "", false
	}
	t.Fatalf("postmap -q %q %s: %v", key, spec, err)
	return "", false
}

// TestAgainstPostalias compares aliases(5) parsing with postalias(1).
func TestAgainstPostalias(t *testing.T) {
	postalias, err := exec.LookPath("postalias")
	if err != nil {
		t.Skip("postalias not installed; skipping comparison with real Postfix")
	}
	path := writeFile(t, "aliases", "# aliases\nRoot: admin, \"|/usr/bin/prog arg\", /var/log/x\n\tbob@example.com\n\"quoted name\": x\nsp : y\nroot: dup\nlist: :include:/etc/list,  carol\n")
	if out, err := exec.Command(postalias, "hash:"+path).CombinedOutput(); err != nil {
		t.Fatalf("postalias hash:%s: %v\n%s", path, err, out)
	}
	ours, err := OpenAliases("texthash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"root", "ROOT", "quoted name", "sp", "list", "nobody"} {
		wantValue, wantFound := runPostmap(t, postalias, key, "hash:"+path)
		v, ok, err := ours.Lookup(key)
		if err != nil || ok != wantFound || v != wantValue {
			t.Errorf("Lookup(%q) = %q, %v, %v; postalias says %q, %v", key, v, ok, err, wantValue, wantFound)
		}
	}
}
