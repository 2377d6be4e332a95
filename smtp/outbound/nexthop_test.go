package outbound

import (
	"testing"
)

func TestParseNexthop(t *testing.T) {
	tests := []struct {
		transport, in string
		want          Destination
		wantErr       bool
	}{
		{"smtp", "example.com", Destination{Host: "example.com", Port: 25, MX: true}, false},
		{"smtp", "Example.COM.", Destination{Host: "example.com", Port: 25, MX: true}, false},
		{"smtp", "example.com:2525", Destination{Host: "example.com", Port: 2525, MX: true}, false},
		{"smtp", "[mx.example.com]", Destination{Host: "mx.example.com", Port: 25}, false},
		{"smtp", "[mx.example.com]:587", Destination{Host: "mx.example.com", Port: 587}, false},
		{"smtp", "[mx.example.com]:submission", Destination{Host: "mx.example.com", Port: 587}, false},
		{"smtp", "[192.0.2.1]:2525", Destination{Host: "192.0.2.1", Port: 2525, Literal: true}, false},
		{"smtp", "[ipv6:2001:db8::1]", Destination{Host: "2001:db8::1", Port: 25, Literal: true}, false},
		{"smtp", "[2001:db8::1]:26", Destination{Host: "2001:db8::1", Port: 26, Literal: true}, false},
		{"smtp", "192.0.2.1", Destination{Host: "192.0.2.1", Port: 25, Literal: true}, false},
		{"smtp", "inet:mx.example.com:25", Destination{Host: "mx.example.com", Port: 25, MX: true}, false},
		{"lmtp", "unix:/var/run/dovecot/lmtp", Destination{Host: "/var/run/dovecot/lmtp", Unix: true}, false},
		{"lmtp", "unix:private/dovecot-lmtp", Destination{Host: "private/dovecot-lmtp", Unix: true}, false},
		{"lmtp", "inet:127.0.0.1:24", Destination{Host: "127.0.0.1", Port: 24, Literal: true}, false},
		{"lmtp", "mail.example.com:2424", Destination{Host: "mail.example.com", Port: 2424}, false},
		{"lmtp", "[mail.example.com]", Destination{Host: "mail.example.com", Port: 24}, false},
		{"lmtp", "mail.example.com", Destination{Host: "mail.example.com", Port: 24}, false},
		{"smtp", "", Destination{}, true},
		{"smtp", "unix:/tmp/x", Destination{}, true},
		{"lmtp", "unix:", Destination{}, true},
		{"smtp", "[mx.example.com", Destination{}, true},
		{"smtp", "[mx.example.com]x", Destination{}, true},
		{"smtp", "[]:25", Destination{}, true},
		{"smtp", "example.com:0", Destination{}, true},
		{"smtp", "example.com:70000", Destination{}, true},
		{"smtp", "example.com:", Destination{}, true},
		{"smtp", "bad host.com", Destination{}, true},
		{"smtp", "a..b", Destination{}, true},
		{"smtp", "exa$mple.com", Destination{}, true},
		{"smtp", "[fe80::1%eth0]", Destination{}, true},
		{"pipe", "example.com", Destination{}, true},
	}
	for _, tc := range tests {
		def := 25
		if tc.transport == "lmtp" {
			def = 24
		}
		got, err := ParseNexthop(tc.transport, tc.in, def)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseNexthop(%s, %q) error = %v, wantErr %v", tc.transport, tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseNexthop(%s, %q) = %+v, want %+v", tc.transport, tc.in, got, tc.want)
		}
	}
}

func FuzzParseNexthop(f *testing.F) {
	for _, s := range []string{"example.com", "[192.0.2.1]:2525", "unix:/run/lmtp", "inet:h:24", "[ipv6:::1]", "a:b:c"} {
		f.Add("smtp", s)
		f.Add("lmtp", s)
	}
	f.Fuzz(func(t *testing.T, transport, in string) {
		d, err := ParseNexthop(transport, in, 25)
		if err != nil {
			return
		}
		if d.Host == "" {
			t.Fatalf("%q: accepted with empty host", in)
		}
		if !d.Unix && (d.Port < 1 || d.Port > 65535) {
			t.Fatalf("%q: port %d", in, d.Port)
		}
		if d.MX && (d.Literal || d.Unix || transport != TransportSMTP) {
			t.Fatalf("%q: inconsistent %+v", in, d)
		}
	})
}
