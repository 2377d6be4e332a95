package mailbox

import "testing"

func TestSplitAddress(t *testing.T) {
	tests := []struct{ in, local, domain string }{
		{"joe@example.com", "joe", "example.com"},
		{"joe", "joe", ""},
		{`"a@b"@example.com`, `"a@b"`, "example.com"},
		{"", "", ""},
		{"@example.com", "", "example.com"},
	}
	for _, tt := range tests {
		l, d := SplitAddress(tt.in)
		if l != tt.local || d != tt.domain {
			t.Errorf("SplitAddress(%q) = %q, %q; want %q, %q", tt.in, l, d, tt.local, tt.domain)
		}
	}
}

func TestSplitExtension(t *testing.T) {
	tests := []struct{ local, delim, user, ext string }{
		{"joe+lists", "+", "joe", "lists"},
		{"joe+a+b", "+", "joe", "a+b"},
		{"joe-x", "+-", "joe", "x"},
		{"joe+lists", "", "joe+lists", ""},
		{"+lists", "+", "+lists", ""},
		{"joe", "+", "joe", ""},
	}
	for _, tt := range tests {
		u, e := SplitExtension(tt.local, tt.delim)
		if u != tt.user || e != tt.ext {
			t.Errorf("SplitExtension(%q, %q) = %q, %q; want %q, %q", tt.local, tt.delim, u, e, tt.user, tt.ext)
		}
	}
}

func TestQuoteLocal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"joe@example.com", "joe@example.com"},
		{"joe.smith@example.com", "joe.smith@example.com"},
		{"a b@example.com", `"a b"@example.com`},
		{`a"b@x`, `"a\"b"@x`},
		{".joe@x", `".joe"@x`},
		{"joe.@x", `"joe."@x`},
		{"a..b@x", `"a..b"@x`},
		{`"a b"@x`, `"a b"@x`},
		{"MAILER-DAEMON", "MAILER-DAEMON"},
	}
	for _, tt := range tests {
		if got := QuoteLocal(tt.in); got != tt.want {
			t.Errorf("QuoteLocal(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
