package lookup

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupportedType is wrapped by Open for a type it does not implement;
// the message reads like Postfix's: "unsupported dictionary type: foo".
var ErrUnsupportedType = errors.New("unsupported dictionary type")

// Open opens a table given as "type:name", as in main.cf:
//
//	hash:/etc/postfix/transport     (also btree:, texthash:, lmdb:)
//	regexp:/etc/postfix/checks      (also pcre:, and regexp:{ {rule}, ... })
//	cidr:/etc/postfix/clients.cidr  (also cidr:{ {rule}, ... })
//	inline:{ key=value, { key = value with spaces } }
//	static:value, static:{ value with spaces }
//	unionmap:{ type:name, type:name }
//	proxy:type:name                 (opened directly)
//
// Indexed types read the postmap(1) source text, not a .db file: there is
// no build step, and an edited file is re-read on the next lookup.
func Open(spec string) (Table, error) { return open(spec, false) }

// OpenAliases is Open for alias_maps/alias_database: indexed types read
// aliases(5) source ("name: value, value") instead of postmap format, just
// as postalias(1) differs from postmap(1) for the same hash: type. Pattern
// and inline types are the same as for Open.
func OpenAliases(spec string) (Table, error) { return open(spec, true) }

// Query opens spec and looks key up once, for "postmap -q key type:name".
func Query(spec, key string) (value string, found bool, err error) {
	t, err := Open(spec)
	if err != nil {
		return "", false, err
	}
	return t.Lookup(key)
}

func open(spec string, aliases bool) (Table, error) {
	typ, name, ok := strings.Cut(spec, ":")
	if !ok || typ == "" || name == "" {
		return nil, fmt.Errorf("expecting \"type:name\" form instead of %q", spec)
	}
	switch typ {
	case "hash", "btree", "texthash", "lmdb":
		compile := compileTextMapSource
		if aliases {
			compile = compileAliasesSource
		}
		return openFileTable(spec, name, false, compile)
	case "regexp", "pcre":
		d := POSIX
		if typ == "pcre" {
			d = PCRE
		}
		compile := func(src *source) (compiledTable, []string, error) {
			list, err := compileRegexpRules(src, d)
			return list, nil, err
		}
		return openPatternTable(spec, name, compile)
	case "cidr":
		compile := func(src *source) (compiledTable, []string, error) {
			list, err := compileCIDRRules(src)
			return list, nil, err
		}
		return openPatternTable(spec, name, compile)
	case "inline":
		return openInline(spec, name)
	case "static":
		return openStatic(spec, name)
	case "unionmap":
		return openUnion(spec, name)
	case "proxy":
		inner, err := open(name, aliases)
		if err != nil {
			return nil, err
		}
		return &renamed{Table: inner, name: spec}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedType, typ)
}

func compileTextMapSource(src *source) (compiledTable, []string, error) {
	m, err := compileTextMap(src)
	if err != nil {
		return nil, nil, err
	}
	return m, m.warnings, nil
}

func compileAliasesSource(src *source) (compiledTable, []string, error) {
	a, err := compileAliases(src)
	if err != nil {
		return nil, nil, err
	}
	return a, a.warnings, nil
}

// openPatternTable opens a pattern table from a file, or from rules given
// inline as "{ {rule-1}, {rule-2} }" (Postfix 3.7).
func openPatternTable(spec, name string, compile compileFunc) (Table, error) {
	if !strings.HasPrefix(name, "{") {
		return openFileTable(spec, name, true, compile)
	}
	items, err := bracedItems(spec, name)
	if err != nil {
		return nil, err
	}
	table, _, err := compile(sourceFromItems(spec, items))
	if err != nil {
		return nil, err
	}
	return &PatternTable{name: spec, rules: table}, nil
}

// renamed keeps the configured name of a proxy: table.
type renamed struct {
	Table
	name string
}

func (r *renamed) Name() string    { return r.name }
func (r *renamed) IsPattern() bool { return IsPattern(r.Table) }
func (r *renamed) lookupPartial(key string, partial bool) (string, bool, error) {
	return lookupKey(r.Table, key, partial)
}
