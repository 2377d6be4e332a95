package lookup

import (
	"fmt"
	"io"
	"strings"
)

// TextMap is an in-memory key/value table built from postmap(1) source
// text. Keys are folded to lower case, as postmap does without -f, and
// lookups fold the query the same way.
type TextMap struct {
	name     string
	entries  map[string]string
	warnings []string
}

// ParseTable parses postmap(1) source text ("key whitespace value" lines,
// '#' comments, whitespace-led continuation lines). name is used in
// messages. Like postmap, a duplicate key keeps its first value and adds a
// warning; unlike postmap, a line without a value is an error rather than
// silently skipped, so a typo cannot drop an access rule.
func ParseTable(name string, r io.Reader) (*TextMap, error) {
	src, err := readSource(name, r)
	if err != nil {
		return nil, err
	}
	return compileTextMap(src)
}

func compileTextMap(src *source) (*TextMap, error) {
	m := &TextMap{name: src.name, entries: make(map[string]string, len(src.lines))}
	for _, l := range src.lines {
		key, value, ok := splitKeyValue(l.text)
		if !ok {
			return nil, src.errorf(l.line, "expected format: key whitespace value")
		}
		key = strings.ToLower(key)
		if _, dup := m.entries[key]; dup {
			m.warnings = append(m.warnings, fmt.Sprintf("%s, line %d: duplicate entry: %q", src.name, l.line, key))
			continue
		}
		m.entries[key] = value
	}
	return m, nil
}

func (m *TextMap) lookup(key string) (string, bool, error) {
	v, ok := m.entries[strings.ToLower(key)]
	return v, ok, nil
}

// Lookup returns the value stored for key (case-insensitively).
func (m *TextMap) Lookup(key string) (string, bool, error) { return m.lookup(key) }

// Name is the name given to ParseTable.
func (m *TextMap) Name() string { return m.name }

// Len is the number of entries.
func (m *TextMap) Len() int { return len(m.entries) }

// Warnings lists non-fatal problems found while parsing, in postmap's
// wording ("file, line N: duplicate entry: ...").
func (m *TextMap) Warnings() []string { return m.warnings }
