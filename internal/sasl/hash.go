package sasl

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hash is one stored password hash.
type Hash struct {
	scheme string // "bcrypt" or "argon2id"
	bcrypt []byte

	// Argon2id parameters.
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// Bounds on Argon2id parameters, so a damaged file cannot make one
// verification allocate gigabytes or run for minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 64
	minArgonSalt      = 8
	minArgonKey       = 16
	maxArgonKey       = 128
)

// ParseHash parses a stored hash: bcrypt ("$2y$10$...", also with a
// {BLF-CRYPT} or {CRYPT} prefix) or Argon2id in PHC form
// ("$argon2id$v=19$m=65536,t=3,p=1$salt$key", also with {ARGON2ID}).
func ParseHash(s string) (Hash, error) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return Hash{}, fmt.Errorf("unterminated {SCHEME} prefix")
		}
		scheme := strings.ToUpper(s[1:end])
		s = s[end+1:]
		switch scheme {
		case "BLF-CRYPT", "BCRYPT":
			return parseBcrypt(s)
		case "ARGON2ID":
			return parseArgon2id(s)
		case "CRYPT":
			// Dovecot's CRYPT is crypt(3): accept the crypt(3) forms we know.
		default:
			return Hash{}, fmt.Errorf("unsupported password scheme {%s} (use BLF-CRYPT or ARGON2ID)", scheme)
		}
	}
	switch {
	case strings.HasPrefix(s, "$2"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case s == "":
		return Hash{}, fmt.Errorf("empty password hash")
	}
	return Hash{}, fmt.Errorf("unsupported password hash (want bcrypt $2y$... or $argon2id$...)")
}

func parseBcrypt(s string) (Hash, error) {
	if len(s) < 4 || s[0] != '$' || s[1] != '2' || !strings.Contains("abxy", s[2:3]) || s[3] != '$' {
		return Hash{}, fmt.Errorf("not a bcrypt hash")
	}
	if _, err := bcrypt.Cost([]byte(s)); err != nil {
		return Hash{}, fmt.Errorf("bcrypt hash: %w", err)
	}
	if len(s) != 60 {
		return Hash{}, fmt.Errorf("bcrypt hash: length %d, want 60", len(s))
	}
	return Hash{scheme: "bcrypt", bcrypt: []byte(s)}, nil
}

func parseArgon2id(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=...,t=...,p=...", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Hash{}, fmt.Errorf("argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$salt$key")
	}
	if parts[2] != "v=19" {
		return Hash{}, fmt.Errorf("argon2id hash: unsupported version %q (want v=19)", parts[2])
	}
	h := Hash{scheme: "argon2id"}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || seen[k] {
			return Hash{}, fmt.Errorf("argon2id hash: bad parameter %q", kv)
		}
		seen[k] = true
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return Hash{}, fmt.Errorf("argon2id hash: p=%d exceeds 255", n)
			}
			h.threads = uint8(n)
		default:
			return Hash{}, fmt.Errorf("argon2id hash: unknown parameter %q", k)
		}
	}
	switch {
	case !seen["m"] || !seen["t"] || !seen["p"]:
		return Hash{}, fmt.Errorf("argon2id hash: m, t and p are required")
	case h.threads == 0 || h.time == 0 || h.time > maxArgonTime:
		return Hash{}, fmt.Errorf("argon2id hash: t must be 1..%d and p at least 1", maxArgonTime)
	case h.memory < 8*uint32(h.threads) || h.memory > maxArgonMemoryKiB:
		return Hash{}, fmt.Errorf("argon2id hash: m=%d KiB outside 8*p..%d", h.memory, maxArgonMemoryKiB)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < minArgonSalt {
		return Hash{}, fmt.Errorf("argon2id hash: salt must be unpadded base64 of at least %d bytes", minArgonSalt)
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < minArgonKey || len(h.key) > maxArgonKey {
		return Hash{}, fmt.Errorf("argon2id hash: key must be unpadded base64 of %d..%d bytes", minArgonKey, maxArgonKey)
	}
	return h, nil
}

// Matches reports whether password hashes to h, in constant time for a
// given hash.
func (h Hash) Matches(password string) (bool, error) {
	switch h.scheme {
	case "bcrypt":
		err := bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("bcrypt: %w", err)
		}
		return true, nil
	case "argon2id":
		key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(key, h.key) == 1, nil
	}
	return false, fmt.Errorf("empty password hash")
}

// Argon2idHash hashes password with the given parameters and a random
// salt, in the PHC form ParseHash reads (for tests and tools).
func Argon2idHash(password string, memoryKiB, time uint32, threads uint8) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, time, memoryKiB, threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memoryKiB, time, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

var (
	decoyOnce sync.Once
	decoy     Hash
)

// decoyHash is checked for unknown users, so that they take as long as
// known users with a wrong password (bcrypt at the default cost).
func decoyHash() Hash {
	decoyOnce.Do(func() {
		secret := make([]byte, 18)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails on supported platforms
		b, err := bcrypt.GenerateFromPassword([]byte(base64.StdEncoding.EncodeToString(secret)), bcrypt.DefaultCost)
		if err != nil {
			return // decoy stays empty: Matches then errors, which fails closed
		}
		decoy = Hash{scheme: "bcrypt", bcrypt: b}
	})
	return decoy
}
