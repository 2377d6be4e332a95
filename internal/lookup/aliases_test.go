package lookup

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAliases(t *testing.T) {
	path := writeFile(t, "aliases", `# /etc/aliases
Root: admin, "|/usr/bin/prog arg", /var/log/x
	bob@example.com
"quoted name": x
sp : y
owner-list:a
list: :include:/etc/mail/list, "john doe"@example.com,,  carol
root: dup
`)
	a, err := ParseAliases(path)
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, a, []lookupCase{
		{"root", `admin, "|/usr/bin/prog arg", /var/log/x bob@example.com`, true},
		{"ROOT", `admin, "|/usr/bin/prog arg", /var/log/x bob@example.com`, true},
		{"quoted name", "x", true},
		{"sp", "y", true},
		{"owner-list", "a", true},
		{"nobody", "", false},
	})
	targets, ok := a.Targets("list")
	want := []string{":include:/etc/mail/list", `"john doe"@example.com`, "carol"}
	if !ok || !reflect.DeepEqual(targets, want) {
		t.Errorf("Targets(list) = %q, %v; want %q", targets, ok, want)
	}
	if len(a.Warnings()) != 1 || !strings.Contains(a.Warnings()[0], `duplicate entry: "root"`) {
		t.Errorf("Warnings = %q, want one duplicate", a.Warnings())
	}
	if a.Len() != 5 {
		t.Errorf("Len = %d, want 5", a.Len())
	}
}

func TestParseAliasesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nocolon value\n", ":1: need name:value pair"},
		{"ok: a\nempty:\n", ":2: need name:value pair"},
		{`"a:b"@x: z` + "\n", `:1: bad quoted alias name "a:b"@x`},
		{"user@example.com: z\n", "must be local"},
		{"two words: z\n", `alias name "two words" must be quoted`},
		{`"unterminated: z` + "\n", ":1: need name:value pair"},
		{`"a"b: z` + "\n", "bad quoted alias name"},
		{`"": z` + "\n", "empty alias name"},
		{": z\n", "empty alias name"},
	}
	for _, tt := range tests {
		path := writeFile(t, "aliases", tt.in)
		_, err := ParseAliases(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), path+":") {
			t.Errorf("ParseAliases(%q) error = %v, want %q prefixed by the file name", tt.in, err, tt.want)
		}
	}
	if _, err := ParseAliases(t.TempDir() + "/missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: error = %v", err)
	}
}

func TestOpenAliases(t *testing.T) {
	path := writeFile(t, "aliases", "postmaster: root\nroot: admin@example.com\n")
	for _, spec := range []string{"hash:" + path, "texthash:" + path, "proxy:hash:" + path} {
		tab, err := OpenAliases(spec)
		if err != nil {
			t.Fatal(err)
		}
		checkLookups(t, tab, []lookupCase{{"postmaster", "root", true}, {"Root", "admin@example.com", true}})
	}
	// The same file through Open is postmap format: "postmaster:" is the key.
	tab, err := Open("hash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, tab, []lookupCase{{"postmaster:", "root", true}, {"postmaster", "", false}})

	maps, err := OpenAliasMaps("hash:" + path + ", inline:{extra=x}")
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, maps, []lookupCase{{"root", "admin@example.com", true}, {"extra", "x", true}})
}

func TestSplitAliasTargets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a, b,c", []string{"a", "b", "c"}},
		{`"|/usr/bin/prog a, b", /dev/null`, []string{"|/usr/bin/prog a, b", "/dev/null"}},
		{`"john, doe"@example.com, x`, []string{`"john, doe"@example.com`, "x"}},
		{`"a\"b", c`, []string{`a"b`, "c"}},
		{" , ,", nil},
		{":include:/etc/list", []string{":include:/etc/list"}},
		{"|exit 67", []string{"|exit 67"}},
	}
	for _, tt := range tests {
		if got := SplitAliasTargets(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitAliasTargets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassifyTarget(t *testing.T) {
	tests := map[string]TargetKind{
		"|/usr/bin/procmail":     TargetCommand,
		"/var/mail/archive":      TargetFile,
		":include:/etc/list":     TargetInclude,
		":INCLUDE:/etc/list":     TargetInclude,
		"user@example.com":       TargetAddress,
		"localuser":              TargetAddress,
		`"john doe"@example.com`: TargetAddress,
	}
	for in, want := range tests {
		if got := ClassifyTarget(in); got != want {
			t.Errorf("ClassifyTarget(%q) = %v, want %v", in, got, want)
		}
	}
}
