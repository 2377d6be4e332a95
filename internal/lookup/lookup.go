// Package lookup implements Postfix-style lookup tables (postmap(1), access(5),
// aliases(5), virtual(5), transport(5)): hash:, texthash:, regexp:, pcre:,
// cidr:, inline:{...} and static:.
package lookup

// Table is one opened lookup table. Lookup returns the value for key and
// whether it was found; err is only for failures of the table itself
// (unreadable file, bad regexp at lookup time), never for "not found".
type Table interface {
	Lookup(key string) (value string, found bool, err error)
	// Name is the table as configured, e.g. "hash:/etc/postfix/transport".
	Name() string
}
