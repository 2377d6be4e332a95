package sasl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	// MinCost keeps the tests fast; the format is the same at any cost.
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseHash(t *testing.T) {
	bc := bcryptHash(t, "secret")
	y := "$2y$" + bc[4:] // htpasswd -B writes $2y$
	argon, err := Argon2idHash("secret", 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		hash    string
		matches bool
		wantErr string
	}{
		{"bcrypt 2a", bc, true, ""},
		{"bcrypt 2y", y, true, ""},
		{"dovecot BLF-CRYPT", "{BLF-CRYPT}" + y, true, ""},
		{"dovecot CRYPT", "{CRYPT}" + y, true, ""},
		{"argon2id", argon, true, ""},
		{"dovecot ARGON2ID", "{ARGON2ID}" + argon, true, ""},
		// Produced by `doveadm pw -s ARGON2ID|BLF-CRYPT -p secret` (Dovecot 2.3).
		{"dovecot argon2id", "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$IfpU9zcqxrV34BhSMbBybA$giRLpOCt8ecCYn0Hy58LAruHFex3W9zcTlxJoI6XgaQ", true, ""},
		{"dovecot BLF-CRYPT real", "{BLF-CRYPT}$2y$05$R0nsCLMU1ab165FOaCj41uD7BflkvKl5wJ8PZFEiElaWO7zrNOtoe", true, ""},
		{"truncated bcrypt", y[:50], false, "bcrypt"},
		{"md5crypt", "$1$abc$def", false, "unsupported"},
		{"plain scheme", "{PLAIN}secret", false, "unsupported password scheme"},
		{"unterminated scheme", "{BLF-CRYPT" + y, false, "unterminated"},
		{"empty", "", false, "empty"},
		{"argon2i", strings.Replace(argon, "argon2id", "argon2i", 1), false, "unsupported"},
		{"argon2id v16", strings.Replace(argon, "v=19", "v=16", 1), false, "version"},
		{"argon2id huge memory", strings.Replace(argon, "m=64", "m=4194304", 1), false, "outside"},
		{"argon2id no t", strings.Replace(argon, ",t=1", "", 1), false, "required"},
		{"argon2id dup", strings.Replace(argon, ",t=1", ",t=1,t=2", 1), false, "bad parameter"},
		{"argon2id short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + strings.Split(argon, "$")[5], false, "salt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHash(tt.hash)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := h.Matches("secret"); !ok || err != nil {
				t.Errorf("right password: %v %v", ok, err)
			}
			if ok, err := h.Matches("Secret"); ok || err != nil {
				t.Errorf("wrong password: %v %v", ok, err)
			}
		})
	}
}

func TestParsePasswd(t *testing.T) {
	h := bcryptHash(t, "pw")
	tests := []struct {
		name    string
		file    string
		users   []string
		wantErr string
	}{
		{"htpasswd", "# users\n\nalice:" + h + "\nbob@example.com:" + h + "\r\n", []string{"alice", "bob@example.com"}, ""},
		{"dovecot fields", "carol:{BLF-CRYPT}" + h + ":1000:1000::/home/carol::\n", []string{"carol"}, ""},
		{"no colon", "alice " + h + "\n", nil, "line 1: expected user:hash"},
		{"empty user", ":" + h + "\n", nil, "line 1: malformed SASL response: empty user name"},
		{"space in user", "al ice:" + h + "\n", nil, "white space"},
		{"bad hash", "# x\nalice:secret\n", nil, "line 2: user alice: unsupported"},
		{"duplicate", "alice:" + h + "\nalice:" + h + "\n", nil, "line 2: user alice is listed twice"},
		{"huge line", "alice:" + strings.Repeat("x", maxPasswdLine+1), nil, "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := ParsePasswd(strings.NewReader(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != len(tt.users) {
				t.Fatalf("users %v, want %v", users, tt.users)
			}
			for _, u := range tt.users {
				if _, ok := users[u]; !ok {
					t.Errorf("user %s missing", u)
				}
			}
		})
	}
}

func TestPasswdFileVerifyAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sasl_passwd")
	if err := os.WriteFile(path, []byte("alice:"+bcryptHash(t, "secret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Open(TypePasswd, path, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(user, pw string, want error) {
		t.Helper()
		got, err := v.Verify(ctx, Credentials{Username: user, Password: pw})
		if want == nil && (err != nil || got != user) {
			t.Fatalf("%s/%s: %q %v", user, pw, got, err)
		}
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("%s/%s: err %v, want %v", user, pw, err, want)
		}
	}
	check("alice", "secret", nil)
	check("alice", "wrong", ErrInvalidCredentials)
	check("mallory", "secret", ErrInvalidCredentials)
	check("Alice", "secret", ErrInvalidCredentials)
	if _, err := v.Verify(ctx, Credentials{AuthzID: "bob", Username: "alice", Password: "secret"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("authzid differing from the user: %v", err)
	}

	// An edit takes effect without reopening (mtime moved on explicitly:
	// file systems with coarse timestamps would otherwise hide it).
	writeAt := func(content string, mt time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	writeAt("bob:"+bcryptHash(t, "hunter2")+"\n", time.Now().Add(time.Minute))
	check("bob", "hunter2", nil)
	check("alice", "secret", ErrInvalidCredentials)

	// A broken file fails temporarily (not as wrong credentials) until fixed.
	writeAt("bob:not-a-hash\n", time.Now().Add(2*time.Minute))
	_, err = v.Verify(ctx, Credentials{Username: "bob", Password: "hunter2"})
	if err == nil || errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("broken file: %v", err)
	}
	writeAt("bob:"+bcryptHash(t, "hunter2")+"\n", time.Now().Add(3*time.Minute))
	check("bob", "hunter2", nil)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("alice:plaintext\n"), 0o600)
	for _, tt := range []struct{ typ, path, want string }{
		{TypeCyrus, "smtpd", "not supported"},
		{"ldap", "x", "unknown type"},
		{TypePasswd, "", "smtpd_sasl_path is empty"},
		{TypePasswd, filepath.Join(dir, "missing"), "no such file"},
		{TypePasswd, bad, bad + ": line 1"},
	} {
		if _, err := Open(tt.typ, tt.path, dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s, %s): %v, want %q", tt.typ, tt.path, err, tt.want)
		}
	}
	// Relative Dovecot socket paths are under the base directory.
	v, err := Open(TypeDovecot, "private/auth", dir)
	if err != nil || v.(*Dovecot).Socket != filepath.Join(dir, "private/auth") {
		t.Fatalf("dovecot: %v %+v", err, v)
	}
}

func FuzzParsePasswd(f *testing.F) {
	f.Add("alice:$2a$04$abcdefghijklmnopqrstuuJ0m4fGvHn0rJ6Q8oUu3y6p2bUeVJYt6\n")
	f.Add("# c\nbob:{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw\n")
	f.Fuzz(func(t *testing.T, file string) {
		users, err := ParsePasswd(strings.NewReader(file))
		if err != nil {
			return
		}
		for user, h := range users {
			if user == "" || strings.ContainsAny(user, " \t\r\n:") {
				t.Fatalf("bad user name %q accepted", user)
			}
			if h.scheme == "argon2id" && (h.memory > maxArgonMemoryKiB || h.time > maxArgonTime) {
				t.Fatalf("unbounded argon2 parameters accepted: %+v", h)
			}
		}
	})
}
