package address

import (
	"strings"
	"unicode/utf8"
)

// Split returns the local part and domain of addr, split at the last '@'
// (a quoted local part may itself contain '@'). domain is "" when addr has
// no '@'.
func Split(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, ""
	}
	// An '@' inside a trailing quoted string is not a separator.
	if strings.Count(addr[i:], `"`)%2 == 1 {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// Canonical lower-cases the domain and leaves the local part alone: local
// parts are case-sensitive in principle (RFC 5321 2.4), domains never are.
func Canonical(addr string) string {
	local, domain := Split(addr)
	if domain == "" {
		return addr
	}
	return local + "@" + strings.ToLower(domain)
}

// HasRoutingChars reports whether local (quoted or not) asks for
// sender-specified routing: '%' or '!' anywhere, or '@' inside a quoted
// local part ("user@remote"@you). Postfix treats these as relay attempts
// when allow_untrusted_routing = no.
func HasRoutingChars(local string) bool {
	if strings.ContainsAny(local, "%!") {
		return true
	}
	return strings.HasPrefix(local, `"`) && strings.Contains(local, "@")
}

// StripExtension splits a local part at the first character that appears
// in delims (recipient_delimiter, which may list several characters), with
// Postfix's split_addr exceptions: postmaster and MAILER-DAEMON are never
// split, neither are owner-foo and foo-request when '-' is a delimiter, and
// a delimiter in the first position does not split. ext keeps the delimiter
// that introduced it, so base+ext == local; ext[1:] is Postfix's
// $extension. When nothing is split, base == local and ext == "".
func StripExtension(local, delims string) (base, ext string) {
	if delims == "" || strings.EqualFold(local, "postmaster") || strings.EqualFold(local, "MAILER-DAEMON") {
		return local, ""
	}
	if strings.Contains(delims, "-") {
		lower := strings.ToLower(local)
		if strings.HasPrefix(lower, "owner-") || (len(lower) > len("-request") && strings.HasSuffix(lower, "-request")) {
			return local, ""
		}
	}
	i := strings.IndexAny(local, delims)
	if i <= 0 {
		return local, ""
	}
	return local[:i], local[i:]
}

// UserExtension is StripExtension as delivery agents need it: the user and
// the extension without its delimiter (Postfix's $user and $extension).
func UserExtension(local, delims string) (user, ext string) {
	user, ext = StripExtension(local, delims)
	if ext != "" {
		_, n := utf8.DecodeRuneInString(ext)
		ext = ext[n:]
	}
	return user, ext
}
