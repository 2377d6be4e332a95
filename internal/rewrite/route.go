package rewrite

import (
	"fmt"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
)

// Route is trivial-rewrite(8)'s answer for one recipient: which transport
// (master.cf service) delivers it, to which nexthop, and the recipient
// address as the delivery agent should see it.
type Route struct {
	Transport string // e.g. "smtp", "relay", "local", "docomo-smtp", "error"
	// Nexthop is transport specific: a domain, "[host]:port", a socket
	// ("unix:private/dovecot-lmtp"), or, for the error transport, the
	// reason text.
	Nexthop   string
	Recipient string // resolved address; its domain is lower-cased
	Class     AddressClass
	// Routed is set when the local part still holds routing operators
	// (user%host@..., host!user@..., "user@host"@...) that the next hop
	// might act on; the SMTP server must not relay such recipients for
	// strangers (Postfix RESOLVE_FLAG_ROUTED).
	Routed bool
}

// Route resolves rcpt the way trivial-rewrite(8) does. rcpt should be in
// canonical form (see Canonicalize); a bare local part resolves to
// user@$myhostname, as in Postfix.
//
// Resolution:
//
//  1. Local domains (mydestination, our address literals) are stripped
//     repeatedly, applying the percent hack, bang paths and quoted
//     "user@host" local parts to what remains: "user%remote@localdomain"
//     resolves to user@remote. An empty local part becomes MAILER-DAEMON.
//  2. The class picks the transport: local_transport, "error" with
//     "5.1.1 User unknown in virtual alias table" for a virtual alias
//     domain (no virtual_alias_maps entry matched), virtual_transport,
//     relay_transport or default_transport.
//  3. The nexthop starts as the recipient domain; for the relay and
//     default classes relayhost replaces it when set (postconf(5): relayhost
//     "overrides non-local domains in recipient addresses" and is
//     "overruled with relay_transport, default_transport ... and with the
//     transport(5) table"). So relayhost applies to relay_domains mail too,
//     unless relay_transport names its own nexthop, as a backup MX with
//     relay_transport = smtp:primary.example.com does.
//  4. A nexthop in the class transport ("local:$myhostname",
//     "smtp:[gw]:587") replaces that.
//  5. transport_maps, except for the virtual alias class, override both:
//     keys user+ext@domain, user@domain, domain, then parent domains
//     (".parent" keys unless TransportMatchSubdomains; "parent" keys when
//     it is set), then "*". A value "transport:" resets the nexthop to the
//     recipient domain ("Address is undeliverable" for error), ":nexthop"
//     keeps the transport, ":" changes nothing.
func (r *Rewriter) Route(rcpt string) (Route, error) {
	recipient, domain, local, err := r.resolve(rcpt)
	if err != nil {
		return Route{}, err
	}
	rt := Route{Recipient: recipient}
	if i := strings.IndexAny(recipient, "@!%"); i >= 0 {
		rt.Routed = recipient[i+1:] != domain
	}
	if local {
		rt.Class = ClassLocal
	} else if rt.Class, err = r.remoteClass(domain); err != nil {
		return Route{}, fmt.Errorf("route %q: %w", rcpt, err)
	}

	var channel string
	switch rt.Class {
	case ClassVirtualAlias:
		rt.Transport, rt.Nexthop = "error", "5.1.1 User unknown in virtual alias table"
		return rt, nil
	case ClassLocal:
		channel, rt.Nexthop = r.s.LocalTransport, domain
	case ClassVirtualMailbox:
		channel, rt.Nexthop = r.s.VirtualTransport, domain
	case ClassRelay, ClassDefault:
		channel = r.s.DefaultTransport
		if rt.Class == ClassRelay {
			channel = r.s.RelayTransport
		}
		rt.Nexthop = domain
		if r.s.Relayhost != "" {
			rt.Nexthop = r.s.Relayhost
		}
	}
	var hop string
	rt.Transport, hop = splitTransport(channel)
	if hop != "" {
		rt.Nexthop = hop
	}
	if err := r.applyTransportMaps(&rt, domain); err != nil {
		return Route{}, fmt.Errorf("route %q: transport_maps: %w", rcpt, err)
	}
	return rt, nil
}

// resolve is step 1 of Route: it returns the resolved recipient, its
// lower-cased domain, and whether the domain is local.
func (r *Rewriter) resolve(addr string) (recipient, domain string, local bool, err error) {
	cur, saved := addr, ""
	// Every rewrite removes a domain or a routing operator, so the address
	// length bounds the work; the margin covers appended domains.
	for range len(addr) + 100 {
		lp, dom := address.Split(cur)
		if dom == "" && lp != cur {
			return "", "", false, fmt.Errorf("%w: %q ends in '@'", ErrBadAddress, addr)
		}
		if dom != "" {
			dom = normalizeDomain(dom)
			isLocal, err := r.isLocal(dom)
			if err != nil {
				return "", "", false, fmt.Errorf("route %q: %w", addr, err)
			}
			if !isLocal {
				if !validDomain(dom) {
					return "", "", false, fmt.Errorf("%w: %q: invalid domain %q", ErrBadAddress, addr, dom)
				}
				if strings.HasPrefix(lp, "-") {
					return "", "", false, fmt.Errorf("%w: %q: local part starts with '-'", ErrBadAddress, addr)
				}
				return lp + "@" + dom, dom, false, nil
			}
			saved, cur = dom, lp
		}
		quoted := len(cur) >= 2 && cur[0] == '"' && cur[len(cur)-1] == '"'
		if !quoted {
			if _, d := address.Split(cur); d != "" {
				continue // "user@remote@local": resolve what is left
			}
			if lp, d := r.routeOperators(cur); d != "" {
				cur = lp + "@" + d // "user%remote", "remote!user"
				continue
			}
		} else if inner, ok := r.dequoteRouted(cur[1 : len(cur)-1]); ok {
			// resolve_dequoted_address: look inside a quoted local part
			// for routing operators, so "user@remote"@us cannot relay.
			if _, d := address.Split(inner); d != "" {
				cur = inner
				continue
			}
			if lp, d := r.routeOperators(inner); d != "" {
				cur = lp + "@" + d
				continue
			}
		}
		if cur == "" || cur == `""` {
			// Re-resolved, in case it were configured as user@domain.
			cur = "MAILER-DAEMON"
			continue
		}
		if saved == "" {
			// A bare local part is user@$myhostname, classified like any
			// other address (so a null client relays it).
			cur += "@" + r.s.MyHostname
			continue
		}
		if strings.HasPrefix(cur, "-") {
			// allow_min_user = no: commands could take it for an option.
			return "", "", false, fmt.Errorf("%w: %q: local part starts with '-'", ErrBadAddress, addr)
		}
		return cur + "@" + saved, saved, true, nil
	}
	return "", "", false, fmt.Errorf("%w: %q: giving up after too many rewrites", ErrBadAddress, addr)
}

// dequoteRouted returns the unquoted content of a quoted local part when
// it contains a routing operator, with a final '%' turned into '@'.
func (r *Rewriter) dequoteRouted(inner string) (string, bool) {
	inner = strings.ReplaceAll(inner, `\"`, `"`)
	inner = strings.ReplaceAll(inner, `\\`, `\`)
	if strings.Contains(inner, "@") {
		return inner, true
	}
	if r.s.AllowPercentHack {
		if i := strings.LastIndexByte(inner, '%'); i >= 0 {
			return inner[:i] + "@" + inner[i+1:], true
		}
	}
	if r.s.SwapBangpath && strings.Contains(inner, "!") {
		return inner, true
	}
	return "", false
}

// applyTransportMaps is step 5 of Route.
func (r *Rewriter) applyTransportMaps(rt *Route, domain string) error {
	if len(r.s.TransportMaps) == 0 {
		return nil
	}
	value, found, err := r.transportLookup(rt.Recipient, domain)
	if err != nil || !found {
		return err
	}
	channel, hop := splitTransport(strings.TrimSpace(value))
	channel, hop = strings.TrimSpace(channel), strings.TrimSpace(hop)
	switch {
	case channel == "":
		if hop != "" {
			rt.Nexthop = hop
		}
	case hop != "":
		rt.Transport, rt.Nexthop = channel, hop
	case channel == "error":
		rt.Transport, rt.Nexthop = channel, "Address is undeliverable"
	default:
		rt.Transport, rt.Nexthop = channel, domain
	}
	return nil
}

// lookupKey is one search key; partial keys skip pattern tables.
type lookupKey struct {
	key     string
	partial bool
}

// transportLookup searches transport_maps in transport(5) key order.
func (r *Rewriter) transportLookup(rcpt, domain string) (string, bool, error) {
	full := strings.ToLower(rcpt)
	keys := []lookupKey{{full, false}}
	lp, _ := address.Split(full)
	if base, ext := address.StripExtension(lp, r.s.RecipientDelimiter); ext != "" {
		keys = append(keys, lookupKey{base + "@" + domain, true})
	}
	for _, k := range parentKeys(domain, r.s.TransportMatchSubdomains) {
		keys = append(keys, lookupKey{k, true})
	}
	keys = append(keys, lookupKey{"*", false})
	for _, k := range keys {
		v, found, err := find(r.s.TransportMaps, k.key, k.partial)
		if err != nil || found {
			return v, found, err
		}
	}
	return "", false, nil
}
