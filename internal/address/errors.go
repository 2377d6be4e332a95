package address

import "errors"

// Error kinds. Parse functions wrap exactly one of these (test with
// errors.Is) so the SMTP server can choose the reply code per kind, e.g.
// 501 5.1.3 for syntax, 553 5.7.1 for routing attempts.
var (
	// ErrSyntax: the address does not follow the RFC 5321 grammar.
	ErrSyntax = errors.New("bad address syntax")
	// ErrMissingBrackets: the path is not enclosed in <> and the caller did
	// not ask for leniency.
	ErrMissingBrackets = errors.New("address must be enclosed in <>")
	// ErrSourceRoute: an RFC 821 source route such as <@relay:user@remote>.
	ErrSourceRoute = errors.New("source routes are not accepted")
	// ErrMultipleAt: more than one unquoted @, as in user@remote@you.
	ErrMultipleAt = errors.New("more than one unquoted @ in address")
	// ErrControlChar: NUL or another control character anywhere in the input.
	ErrControlChar = errors.New("control character in address")
	// ErrInvalidUTF8: bytes >= 0x80 that are not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8 in address")
	// ErrUnqualified: a local part without @domain (only <postmaster> is
	// always allowed, RFC 5321 section 4.5.1).
	ErrUnqualified = errors.New("address has no domain")
	// ErrBadDomain: the domain is not a valid host name.
	ErrBadDomain = errors.New("bad domain in address")
	// ErrBadLiteral: an address literal that is not [IPv4] or [IPv6:addr].
	ErrBadLiteral = errors.New("bad address literal")
	// ErrLocalTooLong: the local part exceeds 64 octets (RFC 5321 4.5.3.1.1).
	ErrLocalTooLong = errors.New("local part longer than 64 octets")
	// ErrDomainTooLong: the domain exceeds 255 octets (RFC 5321 4.5.3.1.2).
	ErrDomainTooLong = errors.New("domain longer than 255 octets")
	// ErrPathTooLong: the path including <> exceeds 256 octets (RFC 5321
	// 4.5.3.1.3).
	ErrPathTooLong = errors.New("path longer than 256 octets")
	// ErrBadParameter: a malformed or repeated ESMTP parameter after the path.
	ErrBadParameter = errors.New("bad ESMTP parameter")
)
