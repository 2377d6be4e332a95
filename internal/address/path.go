package address

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RFC 5321 section 4.5.3.1 size limits, in octets.
const (
	MaxLocalLength  = 64
	MaxDomainLength = 255
	MaxPathLength   = 256 // including the angle brackets
	maxLabelLength  = 63
)

// Path is a parsed reverse-path or forward-path.
type Path struct {
	// Local is the local part exactly as sent; a quoted-string local part
	// keeps its quotes and backslashes.
	Local string
	// Domain is the domain as sent, or the address literal including its
	// brackets ("[192.0.2.1]", "[IPv6:2001:db8::1]"). Empty for the null path
	// and for unqualified addresses such as <postmaster>.
	Domain string
	// Null is set for the null path <>.
	Null bool
	// Quoted is set when Local is a quoted-string.
	Quoted bool
	// Literal is set when Domain is an address literal.
	Literal bool
	// UTF8 is set when the address contains non-ASCII characters, which is
	// only legal when the client gave the SMTPUTF8 parameter (RFC 6531).
	UTF8 bool
}

// String returns local@domain, local alone for an unqualified address, or ""
// for the null path.
func (p Path) String() string {
	switch {
	case p.Null:
		return ""
	case p.Domain == "":
		return p.Local
	default:
		return p.Local + "@" + p.Domain
	}
}

// Options relaxes the parser. The zero value is strict RFC 5321.
type Options struct {
	// AllowMissingBrackets accepts "MAIL FROM:user@example.com" (Postfix's
	// strict_rfc821_envelopes = no does the same).
	AllowMissingBrackets bool
	// AllowUnqualified accepts local parts without @domain; the caller then
	// appends $myorigin. <postmaster> is accepted regardless.
	AllowUnqualified bool
	// AllowLooseDots accepts unquoted local parts with leading, trailing or
	// doubled dots ("a..b", "a."), which some Japanese mobile carriers
	// historically handed out and Postfix accepts by default.
	AllowLooseDots bool
}

// ParsePath parses a path such as "<user@example.com>" or "<>" with strict
// options.
func ParsePath(s string) (Path, error) { return Options{}.ParsePath(s) }

// ParsePath parses a path such as "<user@example.com>" or "<>". The null
// path is returned with Null set; whether it is acceptable (MAIL FROM only)
// is the caller's decision.
func (o Options) ParsePath(s string) (Path, error) {
	if err := checkBytes(s); err != nil {
		return Path{}, err
	}
	inner, bracketed := strings.CutPrefix(s, "<")
	if bracketed {
		var ok bool
		if inner, ok = strings.CutSuffix(inner, ">"); !ok {
			return Path{}, fmt.Errorf("%w: missing closing '>' in %q", ErrSyntax, s)
		}
	} else {
		if !o.AllowMissingBrackets {
			return Path{}, fmt.Errorf("%w: %q", ErrMissingBrackets, s)
		}
		if strings.HasSuffix(s, ">") {
			return Path{}, fmt.Errorf("%w: missing opening '<' in %q", ErrSyntax, s)
		}
	}
	if inner == "" {
		if !bracketed {
			return Path{}, fmt.Errorf("%w: empty address", ErrSyntax)
		}
		return Path{Null: true}, nil
	}
	p, err := o.parseMailbox(inner)
	if err != nil {
		return Path{}, err
	}
	// Checked last so that an over-long local part or domain gets its own,
	// more specific error.
	if len(inner)+2 > MaxPathLength {
		return Path{}, fmt.Errorf("%w: %d octets", ErrPathTooLong, len(inner)+2)
	}
	return p, nil
}

// checkBytes rejects control characters and invalid UTF-8 up front so later
// stages can assume printable input.
func checkBytes(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: byte 0x%02x at offset %d", ErrControlChar, c, i)
		}
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q", ErrInvalidUTF8, s)
	}
	return nil
}

func (o Options) parseMailbox(s string) (Path, error) {
	if s[0] == '@' {
		if strings.Contains(s, ":") {
			return Path{}, fmt.Errorf("%w: %q", ErrSourceRoute, s)
		}
		return Path{}, fmt.Errorf("%w: empty local part in %q", ErrSyntax, s)
	}
	var p Path
	var rest string
	var err error
	if s[0] == '"' {
		p.Local, rest, err = scanQuoted(s)
		p.Quoted = true
	} else {
		p.Local, rest, err = o.scanDotString(s)
	}
	if err != nil {
		return Path{}, err
	}
	if len(p.Local) > MaxLocalLength {
		return Path{}, fmt.Errorf("%w: %d octets", ErrLocalTooLong, len(p.Local))
	}
	p.UTF8 = !isASCII(s)
	if rest == "" {
		if o.AllowUnqualified || strings.EqualFold(p.Local, "postmaster") {
			return p, nil
		}
		return Path{}, fmt.Errorf("%w: %q", ErrUnqualified, s)
	}
	// scan* stop only at '@' or the end of input.
	domain := rest[1:]
	if strings.Contains(domain, "@") {
		return Path{}, fmt.Errorf("%w: %q", ErrMultipleAt, s)
	}
	if len(domain) > MaxDomainLength {
		return Path{}, fmt.Errorf("%w: %d octets", ErrDomainTooLong, len(domain))
	}
	if strings.HasPrefix(domain, "[") {
		if err := checkLiteral(domain); err != nil {
			return Path{}, err
		}
		p.Literal = true
	} else if err := checkDomain(domain); err != nil {
		return Path{}, err
	}
	p.Domain = domain
	return p, nil
}

// scanQuoted reads an RFC 5321 Quoted-string (with RFC 6531's UTF-8
// extension) from the start of s and returns it with its quotes.
func scanQuoted(s string) (quoted, rest string, err error) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
			if i >= len(s) {
				return "", "", fmt.Errorf("%w: unterminated quoted string in %q", ErrSyntax, s)
			}
			// quoted-pairSMTP is backslash followed by %d32-126; control
			// characters were rejected earlier, so only non-ASCII remains.
			if s[i] >= 0x80 {
				return "", "", fmt.Errorf("%w: backslash before non-ASCII character in %q", ErrSyntax, s)
			}
		case c == '"':
			quoted, rest = s[:i+1], s[i+1:]
			if rest != "" && rest[0] != '@' {
				return "", "", fmt.Errorf("%w: text after quoted local part in %q", ErrSyntax, s)
			}
			return quoted, rest, nil
		}
	}
	return "", "", fmt.Errorf("%w: unterminated quoted string in %q", ErrSyntax, s)
}

// scanDotString reads an unquoted local part up to the first '@'.
func (o Options) scanDotString(s string) (local, rest string, err error) {
	end := strings.IndexByte(s, '@')
	if end < 0 {
		end = len(s)
	}
	local, rest = s[:end], s[end:]
	for _, r := range local {
		if r == '.' || isAtext(r) {
			continue
		}
		switch r {
		case ' ':
			return "", "", fmt.Errorf("%w: unquoted space in %q", ErrSyntax, s)
		case '"':
			return "", "", fmt.Errorf("%w: quote inside unquoted local part %q", ErrSyntax, s)
		}
		return "", "", fmt.Errorf("%w: character %q not allowed in unquoted local part %q", ErrSyntax, r, s)
	}
	if local == "" {
		return "", "", fmt.Errorf("%w: empty local part in %q", ErrSyntax, s)
	}
	if !o.AllowLooseDots && (strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..")) {
		return "", "", fmt.Errorf("%w: misplaced dot in local part %q", ErrSyntax, local)
	}
	return local, rest, nil
}

// isAtext reports RFC 5322 atext plus RFC 6531 UTF8-non-ascii.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return unicode.IsGraphic(r) && !unicode.IsSpace(r)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// checkDomain validates a dot-separated host name; labels are LDH, or
// UTF-8 U-labels (letters, digits, marks and hyphens) for SMTPUTF8.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("%w: empty domain", ErrBadDomain)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return fmt.Errorf("%w: empty label in %q", ErrBadDomain, d)
		}
		if len(label) > maxLabelLength {
			return fmt.Errorf("%w: label longer than %d octets in %q", ErrBadDomain, maxLabelLength, d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: label %q starts or ends with '-'", ErrBadDomain, label)
		}
		for _, r := range label {
			ok := r == '-' || (r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))) ||
				(r >= 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)))
			if !ok {
				return fmt.Errorf("%w: character %q in %q", ErrBadDomain, r, d)
			}
		}
	}
	return nil
}

// checkLiteral accepts [dotted-quad] and [IPv6:address]; RFC 5321's
// general-address-literal has no registered tags in use, so it is refused.
func checkLiteral(d string) error {
	body, ok := strings.CutSuffix(d[1:], "]")
	if !ok {
		return fmt.Errorf("%w: missing ']' in %q", ErrBadLiteral, d)
	}
	if len(body) >= 5 && strings.EqualFold(body[:5], "IPv6:") {
		ip, err := netip.ParseAddr(body[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("%w: %q is not an IPv6 address", ErrBadLiteral, body[5:])
		}
		return nil
	}
	ip, err := netip.ParseAddr(body)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("%w: %q is not an IPv4 address", ErrBadLiteral, body)
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
