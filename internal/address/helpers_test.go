package address

import "testing"

func TestSplit(t *testing.T) {
	tests := []struct{ in, local, domain string }{
		{"user@example.com", "user", "example.com"},
		{"user", "user", ""},
		{`"a@b"@example.com`, `"a@b"`, "example.com"},
		{`"a@b"`, `"a@b"`, ""},
		{"user@[IPv6:::1]", "user", "[IPv6:::1]"},
		{"", "", ""},
	}
	for _, tt := range tests {
		local, domain := Split(tt.in)
		if local != tt.local || domain != tt.domain {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tt.in, local, domain, tt.local, tt.domain)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"User@Example.COM", "User@example.com"},
		{"User", "User"},
		{`"A B"@EXAMPLE.com`, `"A B"@example.com`},
	}
	for _, tt := range tests {
		if got := Canonical(tt.in); got != tt.want {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHasRoutingChars(t *testing.T) {
	tests := []struct {
		local string
		want  bool
	}{
		{"user", false},
		{"user%remote", true},
		{"remote!user", true},
		{`"user@remote"`, true},
		{`"john doe"`, false},
		{"first.last+tag", false},
	}
	for _, tt := range tests {
		if got := HasRoutingChars(tt.local); got != tt.want {
			t.Errorf("HasRoutingChars(%q) = %v, want %v", tt.local, got, tt.want)
		}
	}
}

func TestStripExtension(t *testing.T) {
	tests := []struct{ local, delims, base, ext string }{
		{"user+foo", "+", "user", "+foo"},
		{"user+foo+bar", "+", "user", "+foo+bar"},
		{"user-foo+bar", "+-", "user", "-foo+bar"},
		{"user", "+", "user", ""},
		{"user+", "+", "user", "+"},
		{"+foo", "+", "+foo", ""},
		{"user+foo", "", "user+foo", ""},
		{"postmaster+x", "+", "postmaster", "+x"},
		{"Postmaster", "+", "Postmaster", ""},
		{"MAILER-DAEMON", "-", "MAILER-DAEMON", ""},
		{"owner-list", "-", "owner-list", ""},
		{"owner-list", "+", "owner-list", ""},
		{"list-request", "-", "list-request", ""},
		{"-request", "-", "-request", ""},
		{"owner+x", "+-", "owner", "+x"},
		{"a-b", "-", "a", "-b"},
	}
	for _, tt := range tests {
		base, ext := StripExtension(tt.local, tt.delims)
		if base != tt.base || ext != tt.ext {
			t.Errorf("StripExtension(%q, %q) = %q, %q; want %q, %q", tt.local, tt.delims, base, ext, tt.base, tt.ext)
		}
	}
}

func TestUserExtension(t *testing.T) {
	tests := []struct{ local, delims, user, ext string }{
		{"joe+lists", "+", "joe", "lists"},
		{"joe-a+b", "+-", "joe", "a+b"},
		{"joe", "+", "joe", ""},
		{"+joe", "+", "+joe", ""},
		{"owner-list", "-", "owner-list", ""},
		{"postmaster+x", "+", "postmaster", "x"},
		{"MAILER-DAEMON", "-", "MAILER-DAEMON", ""},
		{"joe+x", "", "joe+x", ""},
	}
	for _, tt := range tests {
		if u, e := UserExtension(tt.local, tt.delims); u != tt.user || e != tt.ext {
			t.Errorf("UserExtension(%q, %q) = %q, %q; want %q, %q", tt.local, tt.delims, u, e, tt.user, tt.ext)
		}
	}
}
