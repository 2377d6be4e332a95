package policy

import (
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
)

// senderLoginRestrictions need smtpd_sender_login_maps.
var senderLoginRestrictions = map[string]bool{
	"reject_sender_login_mismatch":                 true,
	"reject_authenticated_sender_login_mismatch":   true,
	"reject_known_sender_login_mismatch":           true,
	"reject_unauthenticated_sender_login_mismatch": true,
}

// senderLogin implements the *_sender_login_mismatch restrictions with
// Postfix's semantics:
//
//   - authenticated: the SASL login must be one of the sender's owners in
//     smtpd_sender_login_maps; a sender without owners is rejected too
//     (reject_known_sender_login_mismatch lets it pass);
//   - unauthenticated: a sender that has an owner needs a login.
//
// reject_sender_login_mismatch is both. The null sender is never checked.
func (e *eval) senderLogin(name string, warn bool) outcome {
	t := e.t
	if t.Sender == "" {
		return dunno
	}
	if len(e.c.cfg.SenderLoginMaps) == 0 {
		return e.configError("%s: smtpd_sender_login_maps is empty", name)
	}
	checkAuth := name != "reject_unauthenticated_sender_login_mismatch"
	checkUnauth := name == "reject_sender_login_mismatch" || name == "reject_unauthenticated_sender_login_mismatch"
	allowUnknown := name == "reject_known_sender_login_mismatch"
	login := t.Client.SASLUser
	if login == "" && !checkUnauth || login != "" && !checkAuth {
		return dunno
	}
	owners, found, failed := e.senderOwners(t.Sender)
	if failed != nil {
		return e.decide(failed, false)
	}
	if login == "" {
		if found {
			return e.decide(e.loginReply("not logged in"), warn)
		}
		return dunno
	}
	if !found && allowUnknown {
		return dunno
	}
	for _, o := range owners {
		if strings.EqualFold(o, login) {
			return dunno
		}
	}
	return e.decide(e.loginReply("not owned by user "+login), warn)
}

// loginReply is Postfix's fixed "553 5.7.1 <s>: Sender address rejected: ...".
func (e *eval) loginReply(text string) *Reply {
	return e.reply(553, "5.7.1", classSender, text)
}

// senderOwners looks sender up in smtpd_sender_login_maps the way
// Postfix's mail_addr_find does: user+ext@domain, user@domain, @domain,
// and for a local domain also user+ext and user (pattern tables see only
// the full address). The value lists the owning logins.
func (e *eval) senderOwners(sender string) (owners []string, found bool, failed *Reply) {
	for _, t := range e.c.cfg.SenderLoginMaps {
		for _, key := range e.senderLoginKeys(sender, partialKeys(t)) {
			value, ok, err := t.Lookup(key)
			if err != nil {
				e.res.Events = append(e.res.Events, Event{Action: "warning", Text: t.Name() + " lookup error for \"" + key + "\": " + err.Error()})
				return nil, false, &Reply{Code: 451, DSN: "4.3.0", Text: "<" + sender + ">: Temporary lookup failure"}
			}
			if ok {
				return SplitList(value), true, nil
			}
		}
	}
	return nil, false, nil
}

func (e *eval) senderLoginKeys(sender string, partial bool) []string {
	addr := strings.ToLower(sender)
	keys := []string{addr}
	if !partial {
		return keys
	}
	local, domain := address.Split(addr)
	base, ext := address.StripExtension(local, e.c.cfg.RecipientDelimiter)
	if domain == "" {
		if ext != "" {
			keys = append(keys, base)
		}
		return keys
	}
	if ext != "" {
		keys = append(keys, base+"@"+domain)
	}
	keys = append(keys, "@"+domain)
	if ClassOf(e.c.cfg.Env, domain) == ClassLocal {
		keys = append(keys, local)
		if ext != "" {
			keys = append(keys, base)
		}
	}
	return keys
}
