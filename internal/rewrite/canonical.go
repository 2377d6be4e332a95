package rewrite

import (
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
)

// Canonicalize rewrites an envelope address to Postfix's canonical form
// (trivial-rewrite's "local" rule set), in this order:
//
//   - a source route is dropped: "@a,@b:user@c" becomes "user@c";
//   - without '@': "site!user" becomes "user@site" (swap_bangpath), else
//     "user%domain" becomes "user@domain" at the last '%'
//     (allow_percent_hack);
//   - still without a domain: "@$myorigin" is appended
//     (append_at_myorigin); the broken form "user@" is left alone;
//   - a domain without a dot gets ".$mydomain" (append_dot_mydomain, off
//     by default since Postfix 3.0);
//   - one trailing dot is stripped, and the domain is lower-cased.
//
// "user@host" is otherwise unchanged; the local part keeps its case. The
// empty address (the null sender) stays empty.
func (r *Rewriter) Canonicalize(addr string) string {
	if addr == "" {
		return ""
	}
	for strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 || i == len(addr)-1 || strings.Contains(addr[:i], `"`) {
			break
		}
		addr = addr[i+1:]
	}
	local, domain := address.Split(addr)
	if domain == "" && local != addr {
		// "user@": Postfix leaves this broken form alone, so that the
		// diagnostic names what the client sent.
		return addr
	}
	if domain == "" {
		local, domain = r.routeOperators(local)
	}
	if domain == "" {
		if !r.s.AppendAtMyorigin || local == "" {
			return local
		}
		domain = r.s.MyOrigin
	}
	if r.s.AppendDotMydomain && r.s.MyDomain != "" &&
		!strings.HasPrefix(domain, "[") && !strings.Contains(domain, ".") {
		domain += "." + r.s.MyDomain
	}
	return local + "@" + normalizeDomain(domain)
}

// routeOperators applies swap_bangpath and allow_percent_hack to an
// address without '@'. Anything with a quote is left alone: a quoted
// string's '!' and '%' are not operators.
func (r *Rewriter) routeOperators(local string) (string, string) {
	if strings.Contains(local, `"`) {
		return local, ""
	}
	// Both sides must be non-empty: "!x" or "x%" are not routes.
	if r.s.SwapBangpath {
		if i := strings.IndexByte(local, '!'); i > 0 && i < len(local)-1 {
			return local[i+1:], local[:i]
		}
	}
	if r.s.AllowPercentHack {
		if i := strings.LastIndexByte(local, '%'); i > 0 && i < len(local)-1 {
			return local[:i], local[i+1:]
		}
	}
	return local, ""
}
