package lookup

import (
	"net/netip"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
)

// Match is the result of a multi-key search.
type Match struct {
	Found bool
	Key   string // the search key that matched
	Value string
	// Extension is the address extension, with its delimiter ("+foo"),
	// that was removed to build Key; "" when Key kept it. virtual(5)
	// callers use it for propagate_unmatched_extensions.
	Extension string
}

// NullSenderKey is the access-map key for the null sender <>
// (smtpd_null_access_lookup_key).
const NullSenderKey = "<>"

// SearchOptions holds the main.cf settings that shape key searches.
type SearchOptions struct {
	// Delimiters is recipient_delimiter; "" disables extension handling.
	Delimiters string
	// ParentMatchesSubdomains says that the key "example.com" also matches
	// sub.example.com, as when parent_domain_matches_subdomains lists the
	// map class (it lists smtpd_access_maps by default, not
	// transport_maps). When false, only ".example.com" keys match
	// subdomains.
	ParentMatchesSubdomains bool
}

// LookupAccess searches an access(5) table for a sender or recipient
// address with Postfix's default settings; see SearchOptions.Access.
func LookupAccess(t Table, addr, delim string) (Match, error) {
	return SearchOptions{Delimiters: delim, ParentMatchesSubdomains: true}.Access(t, addr)
}

// LookupClientAccess searches an access(5) table for an SMTP client with
// Postfix's default settings; see SearchOptions.ClientAccess.
func LookupClientAccess(t Table, hostname, ip string) (Match, error) {
	return SearchOptions{ParentMatchesSubdomains: true}.ClientAccess(t, hostname, ip)
}

// LookupVirtual searches a virtual(5) table; see SearchOptions.Virtual.
func LookupVirtual(t Table, addr, delim string, localDomain bool) (Match, error) {
	return SearchOptions{Delimiters: delim}.Virtual(t, addr, localDomain)
}

// LookupTransport searches a transport(5) table with Postfix's default
// settings (".domain" keys for subdomains); see SearchOptions.Transport.
func LookupTransport(t Table, addr, delim string) (Match, error) {
	return SearchOptions{Delimiters: delim}.Transport(t, addr)
}

// searchKey is one step of a search; partial keys skip pattern tables.
type searchKey struct {
	key       string
	partial   bool
	extension string
}

func search(t Table, keys []searchKey) (Match, error) {
	for _, k := range keys {
		v, ok, err := lookupKey(t, k.key, k.partial)
		if err != nil {
			return Match{}, err
		}
		if ok {
			return Match{Found: true, Key: k.key, Value: v, Extension: k.extension}, nil
		}
	}
	return Match{}, nil
}

// AccessKeys lists the access(5) EMAIL ADDRESS PATTERNS for addr in search
// order: user+foo@domain, user@domain, domain and its parents, user+foo@,
// user@. The null sender ("") is looked up as "<>".
func (o SearchOptions) AccessKeys(addr string) []string { return keyStrings(o.accessKeys(addr)) }

// Access searches t for addr as check_sender_access and
// check_recipient_access do.
func (o SearchOptions) Access(t Table, addr string) (Match, error) {
	return search(t, o.accessKeys(addr))
}

func (o SearchOptions) accessKeys(addr string) []searchKey {
	if addr == "" {
		return []searchKey{{key: NullSenderKey}}
	}
	local, domain := address.Split(addr)
	base, ext := address.StripExtension(local, o.Delimiters)
	keys := []searchKey{{key: addr}}
	if domain == "" {
		if ext != "" {
			keys = append(keys, searchKey{key: base, partial: true, extension: ext})
		}
	} else if ext != "" {
		keys = append(keys, searchKey{key: base + "@" + domain, partial: true, extension: ext})
	}
	if domain != "" {
		for _, d := range o.domainKeys(domain) {
			keys = append(keys, searchKey{key: d, partial: true})
		}
	}
	keys = append(keys, searchKey{key: local + "@", partial: true})
	if ext != "" {
		keys = append(keys, searchKey{key: base + "@", partial: true, extension: ext})
	}
	return keys
}

// Domain searches t for a host or domain name and its parent domains, as
// check_helo_access and the domain step of the other access checks do.
func (o SearchOptions) Domain(t Table, name string) (Match, error) {
	keys := o.domainKeys(name)
	steps := make([]searchKey, len(keys))
	for i, k := range keys {
		steps[i] = searchKey{key: k, partial: i > 0}
	}
	return search(t, steps)
}

// domainKeys lists name and its parents: "a.example.com", "example.com",
// "com" when parents match subdomains, otherwise "a.example.com",
// ".example.com", ".com". Address literals are only tried as they are.
func (o SearchOptions) domainKeys(name string) []string {
	if name == "" {
		return nil
	}
	keys := []string{name}
	if strings.HasPrefix(name, "[") {
		return keys
	}
	for rest := name; ; {
		i := strings.IndexByte(rest[1:], '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:] // ".example.com"
		if o.ParentMatchesSubdomains {
			rest = rest[1:]
			if rest == "" {
				break
			}
			keys = append(keys, rest)
		} else {
			if rest == "." {
				break
			}
			keys = append(keys, rest)
		}
	}
	return keys
}

// ClientAccessKeys lists the access(5) HOST NAME/ADDRESS PATTERNS for a
// client: the hostname and its parent domains, then the address and its
// shorter forms ("1.2.3.4", "1.2.3", "1.2", "1"; IPv6 in compressed form
// cut at each ':').
func (o SearchOptions) ClientAccessKeys(hostname, ip string) []string {
	return keyStrings(o.clientKeys(hostname, ip))
}

// ClientAccess searches t as check_client_access does. hostname may be ""
// or "unknown" when the client has no verified name.
func (o SearchOptions) ClientAccess(t Table, hostname, ip string) (Match, error) {
	return search(t, o.clientKeys(hostname, ip))
}

func (o SearchOptions) clientKeys(hostname, ip string) []searchKey {
	var keys []searchKey
	if hostname != "" && hostname != "unknown" {
		for i, d := range o.domainKeys(hostname) {
			keys = append(keys, searchKey{key: d, partial: i > 0})
		}
	}
	if ip == "" {
		return keys
	}
	// Postfix compares printable forms: IPv4-mapped IPv6 clients are seen
	// as IPv4 and IPv6 is compressed.
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = a.Unmap().WithZone("").String()
	}
	sep := byte('.')
	if strings.Contains(ip, ":") {
		sep = ':'
	}
	for k, partial := ip, false; k != ""; partial = true {
		keys = append(keys, searchKey{key: k, partial: partial})
		i := strings.LastIndexByte(k, sep)
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return keys
}

// VirtualKeys lists the virtual(5) keys for addr in search order:
// user+foo@domain, user@domain, then user+foo and user when localDomain
// (the domain is $myorigin, $mydestination, $inet_interfaces or
// $proxy_interfaces), then @domain.
func (o SearchOptions) VirtualKeys(addr string, localDomain bool) []string {
	return keyStrings(o.virtualKeys(addr, localDomain))
}

// Virtual searches t as virtual_alias_maps lookups do.
func (o SearchOptions) Virtual(t Table, addr string, localDomain bool) (Match, error) {
	return search(t, o.virtualKeys(addr, localDomain))
}

func (o SearchOptions) virtualKeys(addr string, localDomain bool) []searchKey {
	local, domain := address.Split(addr)
	base, ext := address.StripExtension(local, o.Delimiters)
	keys := []searchKey{{key: addr}}
	if ext != "" && domain != "" {
		keys = append(keys, searchKey{key: base + "@" + domain, partial: true, extension: ext})
	}
	if localDomain && domain != "" {
		keys = append(keys, searchKey{key: local, partial: true})
		if ext != "" {
			keys = append(keys, searchKey{key: base, partial: true, extension: ext})
		}
	}
	if domain != "" {
		keys = append(keys, searchKey{key: "@" + domain, partial: true})
	}
	return keys
}

// TransportKeys lists the transport(5) keys for addr in search order:
// user+foo@domain, user@domain, domain, parent domains, "*".
func (o SearchOptions) TransportKeys(addr string) []string {
	return keyStrings(o.transportKeys(addr))
}

// Transport searches t as transport_maps lookups do. The caller maps the
// null recipient to $empty_address_recipient@$myhostname first.
func (o SearchOptions) Transport(t Table, addr string) (Match, error) {
	return search(t, o.transportKeys(addr))
}

func (o SearchOptions) transportKeys(addr string) []searchKey {
	local, domain := address.Split(addr)
	base, ext := address.StripExtension(local, o.Delimiters)
	keys := []searchKey{{key: addr}}
	if ext != "" && domain != "" {
		keys = append(keys, searchKey{key: base + "@" + domain, partial: true, extension: ext})
	}
	for _, d := range o.domainKeys(domain) {
		keys = append(keys, searchKey{key: d, partial: true})
	}
	return append(keys, searchKey{key: "*", partial: true})
}

func keyStrings(keys []searchKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out
}
