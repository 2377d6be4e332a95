package sasl

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mechanisms are the SASL mechanisms the server offers, in EHLO order.
var Mechanisms = []string{"PLAIN", "LOGIN"}

// ErrMalformedResponse is a client response that breaks the mechanism's
// syntax (missing NUL separators, empty user name, control characters).
var ErrMalformedResponse = errors.New("malformed SASL response")

// Limits on what a client may send (RFC 4616 allows 255 octets per field;
// passwords get more room for passphrases).
const (
	maxNameLen     = 255
	maxPasswordLen = 1024
)

// Mechanism is the server side of one SASL exchange. Its method set is
// go-sasl's sasl.Server, so go-smtp can drive it directly.
type Mechanism interface {
	// Next takes the client's (decoded) response, nil when the client sent
	// no initial response, and returns the next challenge or done.
	Next(response []byte) (challenge []byte, done bool, err error)
}

// VerifyFunc checks the credentials a mechanism decoded; only Mechanism,
// AuthzID, Username and Password are set.
type VerifyFunc func(Credentials) error

// NewMechanism starts an exchange for mech (case-insensitive); verify is
// called once, with the decoded credentials, and its error ends the
// exchange.
func NewMechanism(mech string, verify VerifyFunc) (Mechanism, error) {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return &plain{verify: verify}, nil
	case "LOGIN":
		return &login{verify: verify}, nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", mech)
}

// plain is RFC 4616: one message "[authzid] NUL authcid NUL passwd".
type plain struct {
	verify   VerifyFunc
	prompted bool
}

func (p *plain) Next(response []byte) ([]byte, bool, error) {
	if response == nil && !p.prompted {
		p.prompted = true
		return []byte{}, false, nil // "334 " asks for the message
	}
	c, err := ParsePlain(response)
	if err != nil {
		return nil, true, err
	}
	return nil, true, p.verify(c)
}

// ParsePlain decodes a PLAIN message (already base64-decoded).
func ParsePlain(msg []byte) (Credentials, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return Credentials{}, fmt.Errorf("%w: PLAIN needs authzid NUL user NUL password", ErrMalformedResponse)
	}
	c := Credentials{Mechanism: "PLAIN", AuthzID: string(parts[0]), Username: string(parts[1]), Password: string(parts[2])}
	if err := checkName("authorization identity", c.AuthzID, true); err != nil {
		return Credentials{}, err
	}
	if err := checkName("user name", c.Username, false); err != nil {
		return Credentials{}, err
	}
	if err := checkPassword(c.Password); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// login is the LOGIN mechanism (draft-murchison-sasl-login): the user
// name and the password, each after its own prompt.
type login struct {
	verify   VerifyFunc
	user     string
	haveUser bool
	prompted bool
}

var (
	promptUsername = []byte("Username:")
	promptPassword = []byte("Password:")
)

func (l *login) Next(response []byte) ([]byte, bool, error) {
	if !l.haveUser {
		if response == nil && !l.prompted {
			l.prompted = true
			return promptUsername, false, nil
		}
		if err := checkName("user name", string(response), false); err != nil {
			return nil, true, err
		}
		l.user, l.haveUser = string(response), true
		return promptPassword, false, nil
	}
	if bytes.IndexByte(response, 0) >= 0 {
		return nil, true, fmt.Errorf("%w: NUL in password", ErrMalformedResponse)
	}
	if err := checkPassword(string(response)); err != nil {
		return nil, true, err
	}
	return nil, true, l.verify(Credentials{Mechanism: "LOGIN", Username: l.user, Password: string(response)})
}

// checkName rejects names that could not be a login and that would be
// dangerous in logs or in Dovecot's tab-separated protocol.
func checkName(what, s string, emptyOK bool) error {
	switch {
	case s == "" && !emptyOK:
		return fmt.Errorf("%w: empty %s", ErrMalformedResponse, what)
	case len(s) > maxNameLen:
		return fmt.Errorf("%w: %s longer than %d octets", ErrMalformedResponse, what, maxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformedResponse, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character in %s", ErrMalformedResponse, what)
		}
	}
	return nil
}

func checkPassword(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty password", ErrMalformedResponse)
	case len(s) > maxPasswordLen:
		return fmt.Errorf("%w: password longer than %d octets", ErrMalformedResponse, maxPasswordLen)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: NUL in password", ErrMalformedResponse)
	}
	return nil
}
