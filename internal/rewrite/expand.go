package rewrite

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/queue"
)

const (
	// maxAliasDepth is local(8)'s fixed nesting limit for aliases and
	// :include: files.
	maxAliasDepth = 100
	// maxSteps caps the total work of one expansion, so that aliases
	// that fan out at every level cannot explode combinatorially.
	maxSteps = 100000
)

// Expanded is one recipient produced by Expand.
type Expanded struct {
	queue.Recipient
	// Owner is set when the recipient came through an aliases(5) entry
	// "name" for which "owner-name" also exists (owner_request_special):
	// the canonical owner-name address, which Postfix makes the envelope
	// sender so that bounces go to the list owner. The nearest such alias
	// wins.
	Owner string
	// Alias is the aliases(5) name the recipient was expanded from, "" if
	// it did not go through aliases(5). Such recipients have SUCCESS
	// removed from NOTIFY (RFC 3461 6.2.7.3: the alias reports "expanded").
	Alias string
	// Failure is set for a branch of the expansion that failed the way
	// local(8) bounces or defers a single alias target (alias loop,
	// restricted |command or /file, unusable :include: file); Addr names
	// what failed. The other entries are still to be delivered.
	Failure *ExpandError
}

// Recipients returns the deliverable recipients of list (those without
// Failure).
func Recipients(list []Expanded) []queue.Recipient {
	out := make([]queue.Recipient, 0, len(list))
	for _, e := range list {
		if e.Failure == nil {
			out = append(out, e.Recipient)
		}
	}
	return out
}

// Expand rewrites one envelope recipient into the recipients to deliver:
// virtual(5) expansion as cleanup(8) does it, then aliases(5) expansion
// for addresses that route to the local transport, as local(8) does it.
// Every result keeps the DSN fields of rcpt and has OrigAddr set to the
// original RCPT TO address when its Addr differs from it. Duplicates are
// removed.
//
// virtual_alias_maps: keys user+ext@domain, user@domain, then user+ext and
// user when the domain is $myorigin or local, then @domain. Values list
// addresses separated by commas or spaces; a bare name gets @$myorigin; a
// value "@other" means the same user at other; an extension that had to be
// stripped to find the key is added back to every result
// (propagate_unmatched_extensions = virtual). Results are expanded again.
// An address that is already being expanded on this path (itself, in the
// forward-and-keep idiom "user@d user@d, other@x", or an ancestor in a
// loop) is kept as is. Too deep or too wide an expansion is a temporary
// error (virtual_alias_recursion_limit, virtual_alias_expansion_limit), as
// is a table failure. A recipient in a virtual alias domain without any
// match is ErrUnknownUser.
//
// aliases(5): the local part is looked up as user+ext, then user. Targets
// "|command" and "/file" become recipients with Target set and Addr
// name@$myhostname; ":include:/file" reads more targets from the file;
// "\user" is user's mailbox without further expansion; other addresses
// are expanded again. An alias that lists itself delivers to its own
// mailbox, as in sendmail and Postfix.
func (r *Rewriter) Expand(rcpt queue.Recipient) ([]Expanded, error) {
	addr := strings.TrimSpace(rcpt.Addr)
	if addr == "" {
		return nil, expandErr(ErrBadAddress, rcpt.Addr, "5.1.3", "empty recipient address", nil)
	}
	orig := rcpt.OrigAddr
	if orig == "" {
		orig = rcpt.Addr
	}
	canonical := r.Canonicalize(addr)
	if canonical == "" {
		return nil, expandErr(ErrBadAddress, rcpt.Addr, "5.1.3", "bad address syntax", nil)
	}
	x := &expansion{r: r, base: rcpt, orig: orig, seen: map[string]bool{}, included: map[string]bool{}}
	if err := x.address(canonical, frame{top: true}); err != nil {
		return nil, err
	}
	return x.out, nil
}

// expansion is the state of one Expand call.
type expansion struct {
	r        *Rewriter
	base     queue.Recipient
	orig     string
	out      []Expanded
	seen     map[string]bool // emitted (addr, target) pairs
	included map[string]bool // :include: files already read
	virtual  int             // addresses produced by virtual_alias_maps
	steps    int
}

// frame is what one path through the expansion tree carries.
type frame struct {
	top        bool     // the original recipient itself
	depth      int      // virtual alias nesting
	virtChain  []string // lower-cased addresses expanded by virtual_alias_maps on this path
	aliasDepth int      // aliases(5) and :include: nesting
	aliasChain []string // alias names expanded on this path
	expFrom    string   // alias whose targets these are (local(8) exp_from)
	alias      string
	owner      string
}

// with returns chain+v without sharing chain's backing array.
func with(chain []string, v string) []string { return append(slices.Clip(chain), v) }

func (x *expansion) step(addr string) error {
	x.steps++
	if x.steps > maxSteps {
		return expandErr(ErrExpansionSize, addr, "4.6.0", "alias expansion too large", nil)
	}
	return nil
}

// address expands one address: virtual_alias_maps first, then aliases(5)
// when it routes to the local transport.
func (x *expansion) address(addr string, f frame) error {
	if err := x.step(addr); err != nil {
		return err
	}
	lower := strings.ToLower(addr)
	if len(x.r.s.VirtualAliasMaps) > 0 && !slices.Contains(f.virtChain, lower) {
		targets, found, err := x.r.virtualLookup(addr)
		if err != nil {
			return expandErr(ErrTable, addr, "4.3.0", "virtual_alias_maps lookup failure", err)
		}
		if found {
			if f.depth >= x.r.s.VirtualAliasRecursionLimit {
				return expandErr(ErrNesting, addr, "4.6.0", "unreasonable virtual_alias_maps map nesting", nil)
			}
			x.virtual += len(targets)
			if x.virtual > x.r.s.VirtualAliasExpansionLimit {
				return expandErr(ErrExpansionSize, addr, "4.6.0", "unreasonable virtual_alias_maps map expansion size", nil)
			}
			child := f
			child.top, child.depth, child.virtChain = false, f.depth+1, with(f.virtChain, lower)
			for _, t := range targets {
				if err := x.address(t, child); err != nil {
					return err
				}
			}
			return nil
		}
	}
	rt, err := x.r.Route(addr)
	if err != nil {
		return x.routeFailure(addr, f, err)
	}
	if rt.Class == ClassVirtualAlias && f.top {
		return expandErr(ErrUnknownUser, addr, "5.1.1", "User unknown in virtual alias table", nil)
	}
	if x.r.deliversLocally(rt) && len(x.r.s.AliasMaps) > 0 {
		return x.localAlias(addr, rt, f)
	}
	x.emit(addr, "", f)
	return nil
}

// deliversLocally reports whether rt goes to local(8), the agent that
// does aliases(5): the local_transport service, unless that is one of
// Postfix's non-delivering services (a null client's "error:local
// delivery is disabled").
func (r *Rewriter) deliversLocally(rt Route) bool {
	return rt.Transport == r.localTransportName && rt.Transport != "error" && rt.Transport != "discard"
}

// routeFailure turns a Route error into the expansion's result: a bad
// address fails the whole expansion at the top and only its branch below.
func (x *expansion) routeFailure(addr string, f frame, err error) error {
	if errors.Is(err, ErrBadAddress) {
		e := expandErr(ErrBadAddress, addr, "5.1.3", "bad address syntax", err)
		if f.top {
			return e
		}
		x.fail(addr, e)
		return nil
	}
	return expandErr(ErrTable, addr, "4.3.0", "address resolver failure", err)
}

// localAlias is local(8)'s alias step for an address routed to the local
// transport.
func (x *expansion) localAlias(addr string, rt Route, f frame) error {
	lp, _ := address.Split(rt.Recipient)
	lp = strings.ToLower(unquote(lp))
	names := []string{lp}
	if base, ext := address.StripExtension(lp, x.r.s.RecipientDelimiter); ext != "" {
		names = append(names, base)
	}
	for _, name := range names {
		if name == f.expFrom {
			x.emit(addr, "", f) // the alias lists itself: its own mailbox
			return nil
		}
		value, found, err := find(x.r.s.AliasMaps, name, false)
		if err != nil {
			return expandErr(ErrTable, addr, "4.3.0", "alias database unavailable", err)
		}
		if !found {
			continue
		}
		if slices.Contains(f.aliasChain, name) || f.aliasDepth >= maxAliasDepth {
			x.fail(addr, expandErr(ErrAliasLoop, name, "5.4.6", "alias database loop for "+name, nil))
			return nil
		}
		child := f
		child.top, child.aliasDepth, child.aliasChain = false, f.aliasDepth+1, with(f.aliasChain, name)
		child.expFrom, child.alias = name, name
		if x.r.s.OwnerRequestSpecial {
			_, hasOwner, err := find(x.r.s.AliasMaps, "owner-"+name, false)
			if err != nil {
				return expandErr(ErrTable, addr, "4.3.0", "alias database unavailable", err)
			}
			if hasOwner {
				child.owner = x.r.Canonicalize("owner-" + name)
			}
		}
		targets := splitAliasValue(value)
		if len(targets) == 0 {
			x.fail(addr, expandErr(ErrEmptyAlias, name, "4.3.0", "alias database unavailable", nil))
			return nil
		}
		for _, t := range targets {
			if err := x.aliasTarget(t, name, child, "alias"); err != nil {
				return err
			}
		}
		return nil
	}
	x.emit(addr, "", f)
	return nil
}

// aliasTarget handles one target of alias name; source is "alias" or
// "include" (for allow_mail_to_commands / allow_mail_to_files).
func (x *expansion) aliasTarget(t, name string, f frame, source string) error {
	if err := x.step(t); err != nil {
		return err
	}
	owner := name + "@" + normalizeDomain(x.r.s.MyHostname)
	switch {
	case len(t) >= len(":include:") && strings.EqualFold(t[:len(":include:")], ":include:"):
		return x.include(strings.TrimSpace(t[len(":include:"):]), name, f)
	case strings.HasPrefix(t, "|"):
		if !allowed(x.r.s.AllowMailToCommands, source) {
			x.fail(owner, expandErr(ErrRestricted, t, "5.7.1", "mail to command is restricted", nil))
			return nil
		}
		x.emit(owner, t, f)
		return nil
	case strings.HasPrefix(t, "/"):
		if !allowed(x.r.s.AllowMailToFiles, source) {
			x.fail(owner, expandErr(ErrRestricted, t, "5.7.1", "mail to file is restricted", nil))
			return nil
		}
		x.emit(owner, t, f)
		return nil
	case strings.HasPrefix(t, `\`):
		user := t[1:]
		if _, dom := address.Split(user); dom == "" {
			user += "@" + normalizeDomain(x.r.s.MyHostname)
		}
		x.emit(user, "", f)
		return nil
	}
	addr := x.r.Canonicalize(t)
	if addr == "" {
		x.fail(owner, expandErr(ErrBadAddress, t, "5.1.3", "bad address syntax in alias "+name, nil))
		return nil
	}
	rt, err := x.r.Route(addr)
	if err != nil {
		return x.routeFailure(addr, f, err)
	}
	if x.r.deliversLocally(rt) {
		// local(8) recurses into local recipients directly.
		return x.localAlias(addr, rt, f)
	}
	// Anything else is forwarded, i.e. re-enters cleanup(8), where
	// virtual_alias_maps apply again.
	return x.address(addr, f)
}

// emit adds a deliverable recipient.
func (x *expansion) emit(addr, target string, f frame) {
	key := addr + "\x00" + target
	if x.seen[key] {
		return
	}
	x.seen[key] = true
	rcp := x.base
	rcp.Addr, rcp.Target, rcp.OrigAddr = addr, target, x.orig
	if rcp.OrigAddr == addr {
		rcp.OrigAddr = ""
	}
	if f.alias != "" {
		rcp.Notify = withoutSuccess(rcp.Notify)
	}
	if f.owner != "" {
		// A list with an owner starts a new delivery: RFC 3461 6.2.7.2
		// says the original ORCPT must not be passed on.
		rcp.ORCPT = ""
	}
	x.out = append(x.out, Expanded{Recipient: rcp, Owner: f.owner, Alias: f.alias})
}

// fail adds a failed branch.
func (x *expansion) fail(addr string, e *ExpandError) {
	key := addr + "\x00\x00" + e.Kind.Error()
	if x.seen[key] {
		return
	}
	x.seen[key] = true
	rcp := x.base
	rcp.Addr, rcp.Target, rcp.OrigAddr = addr, "", x.orig
	if rcp.OrigAddr == addr {
		rcp.OrigAddr = ""
	}
	x.out = append(x.out, Expanded{Recipient: rcp, Failure: e})
}

func allowed(list []string, source string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), source) {
			return true
		}
	}
	return false
}

// withoutSuccess removes SUCCESS from a NOTIFY list; NEVER if nothing is
// left.
func withoutSuccess(notify string) string {
	if notify == "" {
		return ""
	}
	var keep []string
	for _, v := range strings.Split(notify, ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "SUCCESS") {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		return "NEVER"
	}
	return strings.Join(keep, ",")
}

// virtualLookup searches virtual_alias_maps in virtual(5) key order and
// returns the canonical target addresses.
func (r *Rewriter) virtualLookup(addr string) ([]string, bool, error) {
	full := strings.ToLower(addr)
	lp, domain := address.Split(full)
	origLocal, _ := address.Split(addr)
	base, ext := address.StripExtension(lp, r.s.RecipientDelimiter)
	type attempt struct {
		lookupKey
		stripped bool // the key lacks the extension: propagate it
	}
	tries := []attempt{{lookupKey{full, false}, false}}
	if domain != "" {
		if ext != "" {
			tries = append(tries, attempt{lookupKey{base + "@" + domain, true}, true})
		}
		local := domain == r.myorigin
		if !local {
			var err error
			if local, err = r.isLocal(domain); err != nil {
				return nil, false, err
			}
		}
		if local {
			tries = append(tries, attempt{lookupKey{lp, true}, false})
			if ext != "" {
				tries = append(tries, attempt{lookupKey{base, true}, true})
			}
		}
		tries = append(tries, attempt{lookupKey{"@" + domain, true}, false})
	}
	for _, a := range tries {
		v, found, err := find(r.s.VirtualAliasMaps, a.key, a.partial)
		if err != nil {
			return nil, false, err
		}
		if !found {
			continue
		}
		propagate := ""
		userPart := origLocal
		if a.stripped {
			propagate = ext
			userPart = origLocal[:len(origLocal)-len(ext)]
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "@") {
			v = userPart + v // "@otherdomain": the same user there
		}
		var out []string
		for _, t := range splitAddressList(v) {
			if t = r.Canonicalize(t); t == "" {
				continue // not an address; an all-bad value fails below
			}
			if propagate != "" {
				if i := strings.LastIndexByte(t, '@'); i >= 0 {
					t = t[:i] + propagate + t[i:]
				} else {
					t += propagate
				}
			}
			out = append(out, t)
		}
		if len(out) == 0 {
			return nil, false, fmt.Errorf("%w: lookup of %q returns non-address result %q", ErrTable, a.key, v)
		}
		return out, true, nil
	}
	return nil, false, nil
}

// splitAddressList splits a virtual(5) value at commas and white space
// outside double quotes, dropping angle brackets around an address.
func splitAddressList(s string) []string {
	return splitOutsideQuotes(s, func(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }, true)
}

// splitAliasValue splits an aliases(5) value (or a :include: line) at
// commas outside double quotes. A fully quoted target is unquoted, so
// "|/usr/bin/procmail -a x" becomes a command.
func splitAliasValue(s string) []string {
	var out []string
	for _, raw := range splitOutsideQuotes(s, func(c byte) bool { return c == ',' || c == '\n' }, false) {
		t := unquote(raw)
		if t == "" {
			continue
		}
		// Plain addresses cannot contain spaces; "joe jane" lists two.
		if raw[0] != '"' && !strings.ContainsAny(t[:1], `|/:\`) && strings.ContainsAny(t, " \t") {
			out = append(out, strings.Fields(t)...)
			continue
		}
		out = append(out, t)
	}
	return out
}

func splitOutsideQuotes(s string, sep func(byte) bool, stripAngles bool) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	flush := func() {
		t := strings.TrimSpace(cur.String())
		cur.Reset()
		if stripAngles && len(t) >= 2 && t[0] == '<' && t[len(t)-1] == '>' {
			t = strings.TrimSpace(t[1 : len(t)-1])
		}
		if t != "" {
			out = append(out, t)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			cur.WriteByte(c)
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case !inQuote && sep(c):
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// unquote removes the double quotes around a fully quoted string and its
// backslash escapes; anything else is returned trimmed and unchanged.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	inner := s[1 : len(s)-1]
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\\' && i+1 < len(inner) {
			i++
		}
		b.WriteByte(inner[i])
	}
	return b.String()
}
