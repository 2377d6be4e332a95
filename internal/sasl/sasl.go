package sasl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
)

// ErrInvalidCredentials means the user name or password is wrong (or the
// user does not exist: the two are never told apart).
var ErrInvalidCredentials = errors.New("authentication failure")

// Credentials are what a client presented, plus the connection facts a
// Dovecot authentication server uses for its own policies.
type Credentials struct {
	Mechanism string // "PLAIN" or "LOGIN", as the client asked
	AuthzID   string // PLAIN authorization identity; "" when absent
	Username  string
	Password  string

	Client  netip.Addr // remote address
	Local   netip.Addr // server address
	Secured bool       // the connection is TLS-protected
}

// Verifier checks credentials. It returns the authenticated user name
// (which a Dovecot server may canonicalise), ErrInvalidCredentials (possibly
// wrapped) for wrong credentials, or another error for a temporary failure.
type Verifier interface {
	Verify(ctx context.Context, c Credentials) (user string, err error)
}

// Type names of smtpd_sasl_type.
const (
	TypePasswd  = "passwd"
	TypeDovecot = "dovecot"
	TypeCyrus   = "cyrus"
)

// Open returns the Verifier for smtpd_sasl_type and smtpd_sasl_path.
// Relative paths are taken from baseDir (Postfix resolves the Dovecot
// socket path against $queue_directory).
func Open(saslType, path, baseDir string) (Verifier, error) {
	if path == "" {
		return nil, fmt.Errorf("smtpd_sasl_path is empty")
	}
	if !filepath.IsAbs(path) && baseDir != "" {
		path = filepath.Join(baseDir, path)
	}
	switch saslType {
	case TypePasswd:
		return OpenPasswdFile(path)
	case TypeDovecot:
		return NewDovecot(path), nil
	case TypeCyrus:
		return nil, fmt.Errorf("smtpd_sasl_type = cyrus is not supported; use dovecot (Dovecot's auth socket) or passwd (a file of user:hash lines)")
	}
	return nil, fmt.Errorf("smtpd_sasl_type = %q: unknown type; use passwd or dovecot", saslType)
}
