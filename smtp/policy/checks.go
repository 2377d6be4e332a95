package policy

import (
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
)

// routedAddress reduces rcpt to the address Postfix would route: a source
// route ("@a,@b:user@domain") is dropped. routed reports sender-specified
// routing in the local part (%, !, a quoted @, or a second @), which
// Postfix never relays for untrusted clients (allow_untrusted_routing = no).
func routedAddress(rcpt string) (local, domain string, routed bool) {
	if strings.HasPrefix(rcpt, "@") {
		if i := strings.IndexByte(rcpt, ':'); i >= 0 {
			rcpt = rcpt[i+1:]
		}
	}
	local, domain = address.Split(rcpt)
	routed = address.HasRoutingChars(local) || strings.Contains(strings.Trim(local, `"`), "@")
	return local, strings.ToLower(strings.TrimSuffix(domain, ".")), routed
}

// authorizedDestination is Postfix's permit_auth_destination test.
func (c *Checker) authorizedDestination(rcpt string) bool {
	_, domain, routed := routedAddress(rcpt)
	if domain == "" {
		// An unqualified recipient (<postmaster>) is local.
		return !routed
	}
	return !routed && ClassOf(c.cfg.Env, domain) != ClassDefault
}

func (e *eval) destination(name string, warn bool) outcome {
	if e.t.Recipient == "" {
		return dunno
	}
	if e.c.authorizedDestination(e.t.Recipient) {
		if name == "permit_auth_destination" {
			return permit
		}
		return dunno
	}
	switch name {
	case "reject_unauth_destination":
		code := e.c.codes.RelayReject
		return e.decide(&Reply{Code: code, DSN: dsnFor(code, "5.7.1"), Text: "<" + e.t.Recipient + ">: Relay access denied"}, warn)
	case "defer_unauth_destination":
		code := e.c.codes.Defer
		return e.decide(&Reply{Code: code, DSN: dsnFor(code, "4.7.1"), Text: "<" + e.t.Recipient + ">: Relay access denied"}, warn)
	}
	return dunno
}

// unlistedRecipient is reject_unlisted_recipient: nil when rcpt is valid.
func (c *Checker) unlistedRecipient(rcpt string) *Reply {
	if rcpt == "" || c.cfg.Env == nil {
		return nil
	}
	local, domain, routed := routedAddress(rcpt)
	if routed || domain == "" {
		return nil // relay policy decides about these
	}
	class := ClassOf(c.cfg.Env, domain)
	if class == ClassDefault {
		return nil
	}
	listed, validated, err := c.cfg.Env.RecipientListed(class, local+"@"+domain)
	if err != nil {
		return &Reply{Code: 451, DSN: "4.3.0", Text: "<" + rcpt + ">: Temporary lookup failure"}
	}
	if listed || !validated {
		return nil
	}
	var code int
	var table string
	switch class {
	case ClassLocal:
		code, table = c.codes.UnknownLocalRecipient, "local recipient table"
	case ClassVirtualAlias:
		code, table = c.codes.UnknownVirtualAlias, "virtual alias table"
	case ClassVirtualMailbox:
		code, table = c.codes.UnknownVirtualMailbox, "virtual mailbox table"
	default:
		code, table = c.codes.UnknownRelayRecipient, "relay recipient table"
	}
	return &Reply{Code: code, DSN: dsnFor(code, "5.1.1"), Text: "<" + rcpt + ">: Recipient address rejected: User unknown in " + table}
}

func (e *eval) nonFQDNAddress(addr string, class replyClass, dsn string, warn bool) outcome {
	if addr == "" {
		return dunno
	}
	_, domain, _ := routedAddress(addr)
	if domain != "" && (isAddressLiteral(domain) || strings.Contains(domain, ".")) {
		return dunno
	}
	code := e.c.codes.NonFQDN
	return e.decide(e.reply(code, dsnFor(code, dsn), class, "need fully-qualified address"), warn)
}

// isAddressLiteral reports "[192.0.2.1]" or "[IPv6:...]" forms.
func isAddressLiteral(s string) bool {
	return strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")
}

// validHostname checks RFC 1035 host name syntax as Postfix's
// valid_hostname does: LDH labels of at most 63 octets, at most 255 octets,
// not all-numeric.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 255 {
		return false
	}
	numeric := true
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			switch {
			case ch >= '0' && ch <= '9':
			case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch == '-', ch == '_':
				numeric = false
			default:
				return false
			}
		}
	}
	return !numeric
}
