package lookup

import (
	"fmt"
	"strings"
)

// IsPattern reports whether t matches keys by pattern (regexp:, pcre:,
// cidr:) rather than by exact key. Postfix sends pattern tables only the
// complete search string (the full address, the client name or address),
// never the derived partial keys (parent domains, user@, @domain, network
// prefixes); the search helpers in this package do the same.
func IsPattern(t Table) bool {
	p, ok := t.(interface{ IsPattern() bool })
	return ok && p.IsPattern()
}

// partialLookuper is implemented by composite tables, which must apply the
// pattern/fixed rule to each member rather than as a whole.
type partialLookuper interface {
	lookupPartial(key string, partial bool) (string, bool, error)
}

// lookupKey queries t with key; partial keys skip pattern tables.
func lookupKey(t Table, key string, partial bool) (string, bool, error) {
	if c, ok := t.(partialLookuper); ok {
		return c.lookupPartial(key, partial)
	}
	if partial && IsPattern(t) {
		return "", false, nil
	}
	return t.Lookup(key)
}

// Maps is an ordered list of tables, like a main.cf "*_maps" value: each
// key is tried against every table, in order, before the next key. The
// first table that finds the key wins; a table error stops the search.
type Maps struct {
	tables []Table
}

// NewMaps combines already opened tables.
func NewMaps(tables ...Table) *Maps { return &Maps{tables: tables} }

// OpenMaps opens a main.cf list value such as
// "hash:/etc/postfix/virtual, regexp:/etc/postfix/virtual.re"; items are
// separated by commas or whitespace outside braces.
func OpenMaps(value string) (*Maps, error) { return openMaps(value, Open) }

// OpenAliasMaps is OpenMaps for alias_maps (see OpenAliases).
func OpenAliasMaps(value string) (*Maps, error) { return openMaps(value, OpenAliases) }

func openMaps(value string, open func(string) (Table, error)) (*Maps, error) {
	specs, err := splitBraceList(value)
	if err != nil {
		return nil, fmt.Errorf("table list %q: %w", value, err)
	}
	m := &Maps{}
	for _, spec := range specs {
		t, err := open(spec)
		if err != nil {
			return nil, err
		}
		m.tables = append(m.tables, t)
	}
	return m, nil
}

// Lookup returns the value from the first table that has key.
func (m *Maps) Lookup(key string) (string, bool, error) { return m.lookupPartial(key, false) }

// Name lists the member tables, comma-separated.
func (m *Maps) Name() string {
	names := make([]string, len(m.tables))
	for i, t := range m.tables {
		names[i] = t.Name()
	}
	return strings.Join(names, ", ")
}

// Tables returns the member tables in search order.
func (m *Maps) Tables() []Table { return append([]Table(nil), m.tables...) }

func (m *Maps) lookupPartial(key string, partial bool) (string, bool, error) {
	for _, t := range m.tables {
		v, ok, err := lookupKey(t, key, partial)
		if err != nil {
			return "", false, fmt.Errorf("lookup %q in %s: %w", key, t.Name(), err)
		}
		if ok {
			return v, true, nil
		}
	}
	return "", false, nil
}
