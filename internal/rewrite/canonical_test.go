package rewrite

import "testing"

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
		in     string
		want   string
	}{
		{"bare user gets myorigin", nil, "joe", "joe@mx.example.com"},
		{"myorigin = mydomain", func(s *Settings) { s.MyOrigin = "example.com" }, "joe", "joe@example.com"},
		{"qualified unchanged", nil, "joe@host", "joe@host"},
		{"domain lower-cased, local kept", nil, "Joe@Example.COM", "Joe@example.com"},
		{"trailing dot stripped", nil, "u@Host.", "u@host"},
		{"double dot kept", nil, "u@host..", "u@host.."},
		{"bang path", nil, "site!joe", "joe@site"},
		{"first bang wins", nil, "a!b!c", "b!c@a"},
		{"bang path off", func(s *Settings) { s.SwapBangpath = false; s.AllowPercentHack = false }, "site!joe", "site!joe@mx.example.com"},
		{"percent hack", nil, "joe%host", "joe@host"},
		{"last percent wins", nil, "a%b%c", "a%b@c"},
		{"percent hack off", func(s *Settings) { s.AllowPercentHack = false }, "joe%host", "joe%host@mx.example.com"},
		{"bang only without @", nil, "a!b@c", "a!b@c"},
		{"source route", nil, "@a,@b:u@c", "u@c"},
		{"append_at_myorigin off", func(s *Settings) { s.AppendAtMyorigin = false }, "joe", "joe"},
		{"append_dot_mydomain", func(s *Settings) { s.AppendDotMydomain = true }, "joe@host", "joe@host.example.com"},
		{"append_dot_mydomain not for dotted", func(s *Settings) { s.AppendDotMydomain = true }, "joe@a.b", "joe@a.b"},
		{"append_dot_mydomain not for literal", func(s *Settings) { s.AppendDotMydomain = true }, "joe@[127.0.0.1]", "joe@[127.0.0.1]"},
		{"append_dot_mydomain after myorigin", func(s *Settings) { s.AppendDotMydomain = true; s.MyOrigin = "mx" }, "joe", "joe@mx.example.com"},
		{"broken trailing @ left alone", nil, "u@", "u@"},
		{"quoted local part with @ kept", nil, `"a@b"@c`, `"a@b"@c`},
		{"quoted bare local part", nil, `"a b"`, `"a b"@mx.example.com`},
		{"null address", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSettings()
			if tt.mutate != nil {
				tt.mutate(&s)
			}
			if got := mustNew(t, s).Canonicalize(tt.in); got != tt.want {
				t.Errorf("Canonicalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
