package mailbox

import "strings"

// QuoteLocal returns addr with its localpart quoted as RFC 5322 requires
// when it is not a dot-atom, like Postfix's quote_822_local(): the null
// address stays empty, `joe@x` stays as it is, `a b@x` becomes `"a b"@x`.
func QuoteLocal(addr string) string {
	if addr == "" {
		return ""
	}
	// Split at the last '@' as is: the local part may hold anything.
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i+1:]
	}
	if !needsQuoting(local) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c == '"' || c == '\\' || c == '\r' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	if strings.ContainsRune(addr, '@') {
		b.WriteByte('@')
		b.WriteString(domain)
	}
	return b.String()
}

func needsQuoting(local string) bool {
	if local == "" {
		return false
	}
	if local[0] == '"' && len(local) > 1 && local[len(local)-1] == '"' {
		return false // already quoted
	}
	prevDot := true // a leading dot needs quoting
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c == '.':
			if prevDot {
				return true
			}
			prevDot = true
			continue
		case c <= ' ' || c == 0x7f:
			return true
		case strings.IndexByte(`()<>@,;:\".[]`, c) >= 0:
			return true
		}
		prevDot = false
	}
	return prevDot // trailing dot
}
