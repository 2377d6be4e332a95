package sasl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// PasswdFile verifies passwords against a file of "user:hash" lines, the
// format of htpasswd -B and of Dovecot's passwd-file (fields after the hash
// are ignored, so a Dovecot users file can be shared). Hashes are bcrypt
// ($2a$, $2b$, $2y$, optionally as {BLF-CRYPT} or {CRYPT}) or Argon2id
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash, optionally as {ARGON2ID}).
// Blank lines and lines starting with '#' are ignored. User names match
// exactly (case-sensitive), as in Dovecot's default.
//
// The file is re-read when its modification time or size changes, so
// editing it takes effect without a restart. A file that no longer parses
// makes every verification fail temporarily (454) until it is fixed: the
// server never falls back to a stale or partial user list.
type PasswdFile struct {
	path string
	sem  chan struct{} // bounds concurrent hash computations (CPU and memory)

	mu      sync.Mutex
	users   map[string]Hash
	modTime time.Time
	size    int64
	loadErr error
}

// OpenPasswdFile reads path; errors name the file and line.
func OpenPasswdFile(path string) (*PasswdFile, error) {
	f := &PasswdFile{path: path, sem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	if _, err := f.current(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's name.
func (f *PasswdFile) Path() string { return f.path }

// current returns the user table, re-reading the file when it changed.
func (f *PasswdFile) current() (map[string]Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("sasl passwd file: %w", err)
	}
	if f.users != nil || f.loadErr != nil {
		if st.ModTime().Equal(f.modTime) && st.Size() == f.size {
			return f.users, f.loadErr
		}
	}
	users, err := readPasswdFile(f.path)
	f.modTime, f.size = st.ModTime(), st.Size()
	if err != nil {
		f.users, f.loadErr = nil, err
		return nil, err
	}
	f.users, f.loadErr = users, nil
	return users, nil
}

func readPasswdFile(path string) (map[string]Hash, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sasl passwd file: %w", err)
	}
	defer fh.Close()
	users, err := ParsePasswd(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

// maxPasswdLine bounds one line of the file.
const maxPasswdLine = 64 * 1024

// ParsePasswd parses the file format described at PasswdFile. Every hash
// is validated, so a typo is reported at load time with its line number
// instead of as a failed login later.
func ParsePasswd(r io.Reader) (map[string]Hash, error) {
	users := map[string]Hash{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxPasswdLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		user, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: expected user:hash", n)
		}
		if err := checkName("user name", user, false); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if strings.ContainsAny(user, " \t") {
			return nil, fmt.Errorf("line %d: user name %q contains white space", n, user)
		}
		hashText, _, _ := strings.Cut(rest, ":") // Dovecot's uid:gid:... fields
		h, err := ParseHash(hashText)
		if err != nil {
			return nil, fmt.Errorf("line %d: user %s: %w", n, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %s is listed twice", n, user)
		}
		users[user] = h
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return users, nil
}

// Verify implements Verifier. Unknown users cost as much time as wrong
// passwords, so the timing does not reveal which user names exist.
func (f *PasswdFile) Verify(ctx context.Context, c Credentials) (string, error) {
	if c.AuthzID != "" && c.AuthzID != c.Username {
		return "", fmt.Errorf("%w: authorization identity %q differs from user %q", ErrInvalidCredentials, c.AuthzID, c.Username)
	}
	users, err := f.current()
	if err != nil {
		return "", err
	}
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	case <-ctx.Done():
		return "", fmt.Errorf("sasl passwd file: waiting for a verification slot: %w", ctx.Err())
	}
	h, known := users[c.Username]
	if !known {
		h = decoyHash()
	}
	ok, err := h.Matches(c.Password)
	if err != nil {
		return "", fmt.Errorf("sasl passwd file %s: user %s: %w", f.path, c.Username, err)
	}
	if !known || !ok {
		return "", ErrInvalidCredentials
	}
	return c.Username, nil
}
