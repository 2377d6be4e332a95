package policy

import (
	"errors"
	"fmt"
	"os/user"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/lookup"
)

// AddressClass is Postfix's address class of a recipient domain
// (ADDRESS_CLASS_README).
type AddressClass int

const (
	// ClassDefault: any other domain; mail is relayed only for trusted clients.
	ClassDefault AddressClass = iota
	// ClassLocal: mydestination and the server's own address literals.
	ClassLocal
	// ClassVirtualAlias: virtual_alias_domains.
	ClassVirtualAlias
	// ClassVirtualMailbox: virtual_mailbox_domains.
	ClassVirtualMailbox
	// ClassRelay: relay_domains.
	ClassRelay
)

// Env tells the policy which domains the server handles and which
// recipients exist. Domains are passed in lower case; address literals keep
// their brackets ("[192.0.2.1]").
type Env interface {
	IsLocalDomain(domain string) bool
	IsVirtualAliasDomain(domain string) bool
	IsVirtualMailboxDomain(domain string) bool
	IsRelayDomain(domain string) bool
	// RecipientListed reports whether addr (local@domain, domain in lower
	// case) is a known recipient of its class. validated is false when the
	// class has no recipient table (every address is then accepted, like
	// Postfix with an empty relay_recipient_maps). err is for table
	// failures only.
	RecipientListed(class AddressClass, addr string) (listed, validated bool, err error)
}

// ClassOf returns the address class of domain under env. The order is
// Postfix's: local, virtual alias, virtual mailbox, relay.
func ClassOf(env Env, domain string) AddressClass {
	if env == nil {
		return ClassDefault
	}
	switch {
	case env.IsLocalDomain(domain):
		return ClassLocal
	case env.IsVirtualAliasDomain(domain):
		return ClassVirtualAlias
	case env.IsVirtualMailboxDomain(domain):
		return ClassVirtualMailbox
	case env.IsRelayDomain(domain):
		return ClassRelay
	}
	return ClassDefault
}

// DomainList matches domains against a main.cf domain list such as
// mydestination or relay_domains: names, ".parent" entries and lookup
// tables ("hash:/etc/postfix/relay_domains").
type DomainList struct {
	names      map[string]bool
	tables     []lookup.Table
	subdomains bool
}

// NewDomainList builds a list. matchSubdomains is Postfix's
// parent_domain_matches_subdomains for this parameter (true for
// relay_domains by default, false for mydestination). open opens entries of
// the form type:name; it may be nil when the list has none.
func NewDomainList(entries []string, matchSubdomains bool, open func(spec string) (lookup.Table, error)) (*DomainList, error) {
	l := &DomainList{names: map[string]bool{}, subdomains: matchSubdomains}
	for _, e := range SplitList(entries...) {
		if isTableSpec(e) {
			if open == nil {
				return nil, fmt.Errorf("domain list: no table opener for %q", e)
			}
			t, err := open(e)
			if err != nil {
				return nil, fmt.Errorf("domain list: open %s: %w", e, err)
			}
			l.tables = append(l.tables, t)
			continue
		}
		l.names[strings.ToLower(e)] = true
	}
	return l, nil
}

// isTableSpec reports whether s looks like type:name rather than a domain
// or an address literal.
func isTableSpec(s string) bool {
	i := strings.IndexByte(s, ':')
	return i > 0 && !strings.HasPrefix(s, "[")
}

// Contains reports whether domain (any case) is in the list.
func (l *DomainList) Contains(domain string) bool {
	if l == nil || domain == "" {
		return false
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if l.names[domain] || l.inTables(domain) {
		return true
	}
	if strings.HasPrefix(domain, "[") {
		return false
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		parent := d[i+1:]
		if l.names["."+parent] || (l.subdomains && (l.names[parent] || l.inTables(parent))) {
			return true
		}
		d = parent
	}
}

func (l *DomainList) inTables(key string) bool {
	for _, t := range l.tables {
		if _, found, err := t.Lookup(key); err == nil && found {
			return true
		}
	}
	return false
}

// TableEnv is an Env built from domain lists and recipient tables, the way
// main.cf describes them. A nil table slice means "not validated".
type TableEnv struct {
	LocalDomains          *DomainList // mydestination + inet_interfaces literals
	VirtualAliasDomains   *DomainList
	VirtualMailboxDomains *DomainList
	RelayDomains          *DomainList

	LocalRecipientMaps []lookup.Table // e.g. PasswdTable() plus alias_maps
	VirtualAliasMaps   []lookup.Table
	VirtualMailboxMaps []lookup.Table
	RelayRecipientMaps []lookup.Table
	// RecipientDelimiter is recipient_delimiter: "user+ext" is also looked
	// up as "user".
	RecipientDelimiter string
}

func (e *TableEnv) IsLocalDomain(d string) bool { return e.LocalDomains.Contains(d) }
func (e *TableEnv) IsVirtualAliasDomain(d string) bool {
	return e.VirtualAliasDomains.Contains(d)
}
func (e *TableEnv) IsVirtualMailboxDomain(d string) bool {
	return e.VirtualMailboxDomains.Contains(d)
}
func (e *TableEnv) IsRelayDomain(d string) bool { return e.RelayDomains.Contains(d) }

// RecipientListed implements Env. Any address listed in virtual_alias_maps
// is valid whatever its class, as in Postfix.
func (e *TableEnv) RecipientListed(class AddressClass, addr string) (bool, bool, error) {
	keys := e.addressKeys(addr)
	if found, err := lookupAny(e.VirtualAliasMaps, keys); err != nil || found {
		return found, true, err
	}
	var tables []lookup.Table
	switch class {
	case ClassLocal:
		tables = e.LocalRecipientMaps
		local, _ := address.Split(addr)
		base, _ := address.StripExtension(local, e.RecipientDelimiter)
		keys = append(keys, strings.ToLower(local), strings.ToLower(base))
	case ClassVirtualAlias:
		return false, true, nil // only virtual_alias_maps can list these
	case ClassVirtualMailbox:
		tables = e.VirtualMailboxMaps
	case ClassRelay:
		tables = e.RelayRecipientMaps
	default:
		return true, false, nil
	}
	if tables == nil {
		return true, false, nil
	}
	found, err := lookupAny(tables, keys)
	return found, true, err
}

// addressKeys: user+ext@domain, user@domain, @domain.
func (e *TableEnv) addressKeys(addr string) []string {
	local, domain := address.Split(addr)
	domain = strings.ToLower(domain)
	keys := []string{strings.ToLower(local) + "@" + domain}
	if base, ext := address.StripExtension(local, e.RecipientDelimiter); ext != "" {
		keys = append(keys, strings.ToLower(base)+"@"+domain)
	}
	return append(keys, "@"+domain)
}

func lookupAny(tables []lookup.Table, keys []string) (bool, error) {
	for _, t := range tables {
		for _, k := range keys {
			_, found, err := t.Lookup(k)
			if err != nil {
				return false, fmt.Errorf("lookup %s in %s: %w", k, t.Name(), err)
			}
			if found {
				return true, nil
			}
		}
	}
	return false, nil
}

// PasswdTable returns the "passwd.byname" table of local_recipient_maps:
// the system's user database through os/user.
func PasswdTable() lookup.Table { return passwdTable{} }

type passwdTable struct{}

func (passwdTable) Name() string { return "unix:passwd.byname" }

func (passwdTable) Lookup(key string) (string, bool, error) {
	if key == "" || strings.ContainsAny(key, "@:/") {
		return "", false, nil // never a login name
	}
	u, err := user.Lookup(key)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("passwd lookup %q: %w", key, err)
	}
	return u.Uid, true, nil
}
