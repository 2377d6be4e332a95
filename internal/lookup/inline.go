package lookup

import (
	"fmt"
	"strings"
)

// inlineTable is inline:{ key=value, { key = value with spaces } }.
type inlineTable struct {
	name string
	m    *TextMap
}

func openInline(spec, body string) (*inlineTable, error) {
	items, err := bracedItems(spec, body)
	if err != nil {
		return nil, err
	}
	m := &TextMap{name: spec, entries: make(map[string]string, len(items))}
	for _, item := range items {
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: missing '=' after attribute name in %q; need \"inline:{name=value...}\"", spec, item)
		case key == "":
			return nil, fmt.Errorf("%s: empty name in %q", spec, item)
		case value == "":
			return nil, fmt.Errorf("%s: key %s: empty value is not allowed", spec, key)
		}
		key = strings.ToLower(key)
		if _, dup := m.entries[key]; dup {
			m.warnings = append(m.warnings, fmt.Sprintf("%s: duplicate entry: %q", spec, key))
			continue
		}
		m.entries[key] = value
	}
	return &inlineTable{name: spec, m: m}, nil
}

func (t *inlineTable) Lookup(key string) (string, bool, error) { return t.m.lookup(key) }
func (t *inlineTable) Name() string                            { return t.name }
func (t *inlineTable) Warnings() []string                      { return t.m.warnings }

// bracedItems checks that body is "{...}" and splits its inside.
func bracedItems(spec, body string) ([]string, error) {
	inner, err := stripBraces(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	items, err := splitBraceList(inner)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: empty table", spec)
	}
	return items, nil
}

// staticTable is static:value; every key finds value.
type staticTable struct {
	name, value string
}

func openStatic(spec, body string) (*staticTable, error) {
	value := body
	if strings.HasPrefix(body, "{") {
		var err error
		if value, err = stripBraces(body); err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
	}
	if value == "" {
		return nil, fmt.Errorf("%s: empty static value", spec)
	}
	return &staticTable{name: spec, value: value}, nil
}

func (t *staticTable) Lookup(string) (string, bool, error) { return t.value, true, nil }
func (t *staticTable) Name() string                        { return t.name }

// unionTable is unionmap:{t1, t2, ...}: the values of every member that
// finds the key, joined with commas (Postfix 3.0 dict_union).
type unionTable struct {
	name    string
	members []Table
}

func openUnion(spec, body string) (*unionTable, error) {
	items, err := bracedItems(spec, body)
	if err != nil {
		return nil, err
	}
	u := &unionTable{name: spec}
	for _, item := range items {
		t, err := Open(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		u.members = append(u.members, t)
	}
	return u, nil
}

func (u *unionTable) Lookup(key string) (string, bool, error) { return u.lookupPartial(key, false) }
func (u *unionTable) Name() string                            { return u.name }

// lookupPartial skips pattern members for partial keys, like Maps.
func (u *unionTable) lookupPartial(key string, partial bool) (string, bool, error) {
	var values []string
	for _, t := range u.members {
		v, ok, err := lookupKey(t, key, partial)
		if err != nil {
			return "", false, err
		}
		if ok {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return "", false, nil
	}
	return strings.Join(values, ","), true, nil
}
