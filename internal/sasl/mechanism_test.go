package sasl

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePlain(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		want    Credentials
		wantErr bool
	}{
		{"no authzid", "\x00alice\x00secret", Credentials{Mechanism: "PLAIN", Username: "alice", Password: "secret"}, false},
		{"authzid", "alice\x00alice\x00pw with spaces", Credentials{Mechanism: "PLAIN", AuthzID: "alice", Username: "alice", Password: "pw with spaces"}, false},
		{"utf8 user", "\x00jürgen@example.com\x00pw", Credentials{Mechanism: "PLAIN", Username: "jürgen@example.com", Password: "pw"}, false},
		{"one NUL", "\x00alice", Credentials{}, true},
		{"three NULs", "\x00alice\x00pw\x00x", Credentials{}, true},
		{"empty user", "\x00\x00secret", Credentials{}, true},
		{"empty password", "\x00alice\x00", Credentials{}, true},
		{"tab in user", "\x00al\tice\x00pw", Credentials{}, true},
		{"newline in user", "\x00alice\nOK\x00pw", Credentials{}, true},
		{"control in authzid", "\x01\x00alice\x00pw", Credentials{}, true},
		{"bad utf8", "\x00\xff\xfe\x00pw", Credentials{}, true},
		{"long user", "\x00" + strings.Repeat("a", 256) + "\x00pw", Credentials{}, true},
		{"long password", "\x00alice\x00" + strings.Repeat("p", 1025), Credentials{}, true},
		{"empty", "", Credentials{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlain([]byte(tt.msg))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("err = %v, want ErrMalformedResponse", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// step is one client response and what the mechanism must answer.
type step struct {
	response  []byte // nil: no initial response
	challenge string
	done      bool
	wantErr   bool
}

func TestMechanisms(t *testing.T) {
	tests := []struct {
		mech  string
		steps []step
		want  *Credentials // nil: verify must not be called
	}{
		{"PLAIN", []step{{response: []byte("\x00u\x00p"), done: true}}, &Credentials{Mechanism: "PLAIN", Username: "u", Password: "p"}},
		{"plain", []step{{response: nil, challenge: ""}, {response: []byte("\x00u\x00p"), done: true}}, &Credentials{Mechanism: "PLAIN", Username: "u", Password: "p"}},
		{"PLAIN", []step{{response: nil}, {response: []byte{}, done: true, wantErr: true}}, nil},
		{"PLAIN", []step{{response: []byte("garbage"), done: true, wantErr: true}}, nil},
		{"LOGIN", []step{{response: nil, challenge: "Username:"}, {response: []byte("u"), challenge: "Password:"}, {response: []byte("p"), done: true}},
			&Credentials{Mechanism: "LOGIN", Username: "u", Password: "p"}},
		{"LOGIN", []step{{response: []byte("u"), challenge: "Password:"}, {response: []byte("p w"), done: true}},
			&Credentials{Mechanism: "LOGIN", Username: "u", Password: "p w"}},
		{"LOGIN", []step{{response: nil, challenge: "Username:"}, {response: []byte{}, done: true, wantErr: true}}, nil},
		{"LOGIN", []step{{response: []byte("u"), challenge: "Password:"}, {response: []byte{}, done: true, wantErr: true}}, nil},
		{"LOGIN", []step{{response: []byte("u\r\nx"), done: true, wantErr: true}}, nil},
		{"LOGIN", []step{{response: []byte("u"), challenge: "Password:"}, {response: []byte("a\x00b"), done: true, wantErr: true}}, nil},
	}
	for i, tt := range tests {
		var got *Credentials
		m, err := NewMechanism(tt.mech, func(c Credentials) error { got = &c; return nil })
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		for j, s := range tt.steps {
			ch, done, err := m.Next(s.response)
			if (err != nil) != s.wantErr || done != s.done || string(ch) != s.challenge {
				t.Fatalf("%d step %d: got %q, %v, %v; want %q, %v, err=%v", i, j, ch, done, err, s.challenge, s.done, s.wantErr)
			}
		}
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("%d: verified %+v, want %+v", i, got, tt.want)
		}
	}
	if _, err := NewMechanism("CRAM-MD5", nil); err == nil {
		t.Error("CRAM-MD5 accepted")
	}
}

func TestVerifyErrorEndsExchange(t *testing.T) {
	m, _ := NewMechanism("PLAIN", func(Credentials) error { return ErrInvalidCredentials })
	if _, done, err := m.Next([]byte("\x00u\x00p")); !done || !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("done=%v err=%v", done, err)
	}
}

func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("a\x00b\x00c"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := ParsePlain(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		// A parsed message is re-encoded exactly and carries nothing that
		// could break a log line or Dovecot's protocol.
		if c.AuthzID+"\x00"+c.Username+"\x00"+c.Password != string(msg) {
			t.Fatalf("round trip: %+v vs %q", c, msg)
		}
		if c.Username == "" || c.Password == "" || strings.ContainsAny(c.Username+c.AuthzID, "\t\r\n\x00") {
			t.Fatalf("unsafe credentials accepted: %+v", c)
		}
	})
}
