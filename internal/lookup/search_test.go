package lookup

import (
	"errors"
	"reflect"
	"testing"
)

func TestSearchKeyOrder(t *testing.T) {
	def := SearchOptions{Delimiters: "+", ParentMatchesSubdomains: true}
	dot := SearchOptions{Delimiters: "+-"}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"access with extension", def.AccessKeys("user+foo@sub.example.com"),
			[]string{"user+foo@sub.example.com", "user@sub.example.com", "sub.example.com", "example.com", "com", "user+foo@", "user@"}},
		{"access plain", def.AccessKeys("user@example.com"),
			[]string{"user@example.com", "example.com", "com", "user@"}},
		{"access dot style", dot.AccessKeys("user@sub.example.com"),
			[]string{"user@sub.example.com", "sub.example.com", ".example.com", ".com", "user@"}},
		{"access null sender", def.AccessKeys(""), []string{"<>"}},
		{"access literal", def.AccessKeys("user@[192.0.2.1]"), []string{"user@[192.0.2.1]", "[192.0.2.1]", "user@"}},
		{"access no split for postmaster", def.AccessKeys("postmaster@example.com"),
			[]string{"postmaster@example.com", "example.com", "com", "postmaster@"}},
		{"access second delimiter", dot.AccessKeys("user-foo@example.com"),
			[]string{"user-foo@example.com", "user@example.com", "example.com", ".com", "user-foo@", "user@"}},
		{"client v4", def.ClientAccessKeys("mail.example.com", "192.0.2.10"),
			[]string{"mail.example.com", "example.com", "com", "192.0.2.10", "192.0.2", "192.0", "192"}},
		{"client unknown name, mapped v4", def.ClientAccessKeys("unknown", "::ffff:192.0.2.10"),
			[]string{"192.0.2.10", "192.0.2", "192.0", "192"}},
		{"client v6 compressed", dot.ClientAccessKeys("", "2001:DB8:0:0:0:0:0:1"),
			[]string{"2001:db8::1", "2001:db8:", "2001:db8", "2001"}},
		{"virtual local", SearchOptions{Delimiters: "+"}.VirtualKeys("user+foo@example.com", true),
			[]string{"user+foo@example.com", "user@example.com", "user+foo", "user", "@example.com"}},
		{"virtual remote", SearchOptions{Delimiters: "+"}.VirtualKeys("user+foo@example.com", false),
			[]string{"user+foo@example.com", "user@example.com", "@example.com"}},
		{"virtual no delimiter", SearchOptions{}.VirtualKeys("user+foo@example.com", false),
			[]string{"user+foo@example.com", "@example.com"}},
		{"transport", SearchOptions{Delimiters: "+"}.TransportKeys("user+foo@mail.example.com"),
			[]string{"user+foo@mail.example.com", "user@mail.example.com", "mail.example.com", ".example.com", ".com", "*"}},
		{"transport parent style", SearchOptions{ParentMatchesSubdomains: true}.TransportKeys("u@a.example.com"),
			[]string{"u@a.example.com", "a.example.com", "example.com", "com", "*"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, tt.got, tt.want)
		}
	}
}

// recordingTable remembers the keys it was asked for.
type recordingTable struct {
	values  map[string]string
	pattern bool
	asked   []string
	err     error
}

func (r *recordingTable) Lookup(key string) (string, bool, error) {
	r.asked = append(r.asked, key)
	if r.err != nil {
		return "", false, r.err
	}
	v, ok := r.values[key]
	return v, ok, nil
}
func (r *recordingTable) Name() string    { return "recording" }
func (r *recordingTable) IsPattern() bool { return r.pattern }

func TestSearchMatches(t *testing.T) {
	access := &recordingTable{values: map[string]string{"example.com": "REJECT", "user@": "OK"}}
	m, err := LookupAccess(access, "user+foo@sub.example.com", "+")
	if err != nil || m != (Match{Found: true, Key: "example.com", Value: "REJECT"}) {
		t.Fatalf("LookupAccess = %+v, %v", m, err)
	}

	virtual := &recordingTable{values: map[string]string{"user@example.com": "alice", "@example.com": "catchall"}}
	m, err = LookupVirtual(virtual, "user+foo@example.com", "+", false)
	if err != nil || m != (Match{Found: true, Key: "user@example.com", Value: "alice", Extension: "+foo"}) {
		t.Fatalf("LookupVirtual = %+v, %v", m, err)
	}
	m, err = LookupVirtual(virtual, "bob@example.com", "+", false)
	if err != nil || m.Key != "@example.com" || m.Value != "catchall" {
		t.Fatalf("LookupVirtual catch-all = %+v, %v", m, err)
	}

	transport := &recordingTable{values: map[string]string{"*": "smtp:[fallback]"}}
	m, err = LookupTransport(transport, "a@b.example", "")
	if err != nil || m.Key != "*" || m.Value != "smtp:[fallback]" {
		t.Fatalf("LookupTransport = %+v, %v", m, err)
	}

	client := &recordingTable{values: map[string]string{"192.0.2": "REJECT"}}
	m, err = LookupClientAccess(client, "unknown", "192.0.2.99")
	if err != nil || m.Key != "192.0.2" {
		t.Fatalf("LookupClientAccess = %+v, %v", m, err)
	}

	none := &recordingTable{}
	if m, err := LookupAccess(none, "a@b.example", ""); err != nil || m.Found {
		t.Fatalf("not found: %+v, %v", m, err)
	}
}

// TestPatternTablesGetOnlyFullKeys: Postfix sends regexp/pcre/cidr tables
// only the complete search string, never partial keys.
func TestPatternTablesGetOnlyFullKeys(t *testing.T) {
	pattern := &recordingTable{pattern: true}
	fixed := &recordingTable{}
	maps := NewMaps(pattern, fixed)
	if _, err := LookupAccess(maps, "user+foo@example.com", "+"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"user+foo@example.com"}; !reflect.DeepEqual(pattern.asked, want) {
		t.Errorf("pattern table asked %q, want %q", pattern.asked, want)
	}
	if len(fixed.asked) != 6 {
		t.Errorf("fixed table asked %q, want all 6 keys", fixed.asked)
	}

	pattern.asked = nil
	if _, err := LookupClientAccess(pattern, "mail.example.com", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"mail.example.com", "192.0.2.1"}; !reflect.DeepEqual(pattern.asked, want) {
		t.Errorf("pattern table asked %q, want %q", pattern.asked, want)
	}

	// A real regexp table in a union keeps the rule.
	re, err := Open("unionmap:{regexp:{{/^example\\.com$/ PARTIAL}}, inline:{user@=OK}}")
	if err != nil {
		t.Fatal(err)
	}
	m, err := LookupAccess(re, "user@example.com", "")
	if err != nil || m.Key != "user@" || m.Value != "OK" {
		t.Fatalf("union search = %+v, %v", m, err)
	}
}

func TestSearchStopsOnTableError(t *testing.T) {
	boom := errors.New("boom")
	broken := &recordingTable{err: boom}
	maps := NewMaps(broken, &recordingTable{values: map[string]string{"a@b.example": "OK"}})
	if _, err := LookupAccess(maps, "a@b.example", ""); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want wrapped boom", err)
	}
}

func TestDomainSearch(t *testing.T) {
	tab := &recordingTable{values: map[string]string{".example.com": "REJECT"}}
	m, err := SearchOptions{}.Domain(tab, "helo.example.com")
	if err != nil || m.Key != ".example.com" {
		t.Fatalf("Domain = %+v, %v", m, err)
	}
	m, err = SearchOptions{}.Domain(tab, "example.com")
	if err != nil || m.Found {
		t.Fatalf("Domain(example.com) = %+v, %v; .example.com must not match the domain itself", m, err)
	}
}

func TestMaps(t *testing.T) {
	path := writeFile(t, "virtual", "a@example.com first\n")
	maps, err := OpenMaps("hash:" + path + ", inline:{a@example.com=second, b@example.com=b}")
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, maps, []lookupCase{{"a@example.com", "first", true}, {"b@example.com", "b", true}, {"c", "", false}})
	if len(maps.Tables()) != 2 || maps.Name() != "hash:"+path+", inline:{a@example.com=second, b@example.com=b}" {
		t.Errorf("Tables/Name = %d %q", len(maps.Tables()), maps.Name())
	}
	if _, err := OpenMaps("hash:" + path + " bogus:x"); err == nil {
		t.Error("OpenMaps with a bad member: want error")
	}
}
