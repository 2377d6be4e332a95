package mailbox

import "testing"

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
