package lookup

import (
	"fmt"
	"os"
	"strings"
)

// Aliases is a parsed aliases(5) file. It is also a Table whose values are
// the raw right-hand sides (whitespace runs outside quotes collapsed to one
// space, as postalias stores them); use SplitAliasTargets or Targets for
// the individual destinations.
type Aliases struct {
	name     string
	entries  map[string]string
	warnings []string
}

// ParseAliases reads an aliases(5) file: "name: value1, value2" lines,
// '#' comments, whitespace-led continuation lines, names in double quotes
// when they contain special characters. Names are folded to lower case.
// A duplicate name keeps its first definition and adds a warning (as
// postalias does); a line without "name:" or without a value, or a name
// with a domain part, is an error.
func ParseAliases(path string) (*Aliases, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open aliases: %w", err)
	}
	defer f.Close()
	src, err := readSource(path, f)
	if err != nil {
		return nil, err
	}
	return compileAliases(src)
}

func compileAliases(src *source) (*Aliases, error) {
	a := &Aliases{name: src.name, entries: make(map[string]string, len(src.lines))}
	for _, l := range src.lines {
		colon := indexUnquoted(l.text, ':')
		if colon < 0 {
			return nil, src.errorf(l.line, "need name:value pair")
		}
		name, err := aliasName(strings.TrimSpace(l.text[:colon]))
		if err != nil {
			return nil, src.errorf(l.line, "%v", err)
		}
		value := collapseSpace(strings.TrimSpace(l.text[colon+1:]))
		if value == "" {
			return nil, src.errorf(l.line, "need name:value pair")
		}
		if _, dup := a.entries[name]; dup {
			a.warnings = append(a.warnings, fmt.Sprintf("%s, line %d: duplicate entry: %q", src.name, l.line, name))
			continue
		}
		a.entries[name] = value
	}
	return a, nil
}

// aliasName validates and unquotes the left-hand side.
func aliasName(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("empty alias name")
	}
	name := raw
	if raw[0] == '"' {
		unq, ok := unquote(raw)
		if !ok {
			return "", fmt.Errorf("bad quoted alias name %s", raw)
		}
		name = unq
	} else {
		if strings.ContainsAny(raw, " \t\"") {
			return "", fmt.Errorf("alias name %q must be quoted", raw)
		}
		if strings.Contains(raw, "@") {
			return "", fmt.Errorf("alias name %q must be local (no @domain)", raw)
		}
	}
	if name == "" {
		return "", fmt.Errorf("empty alias name")
	}
	return strings.ToLower(name), nil
}

// Lookup returns the raw right-hand side for name (case-insensitively).
func (a *Aliases) Lookup(name string) (string, bool, error) {
	v, ok := a.entries[strings.ToLower(name)]
	return v, ok, nil
}

func (a *Aliases) lookup(key string) (string, bool, error) { return a.Lookup(key) }

// Name is the file name.
func (a *Aliases) Name() string { return a.name }

// Targets returns the destinations of name, split by SplitAliasTargets.
func (a *Aliases) Targets(name string) ([]string, bool) {
	v, ok := a.entries[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return SplitAliasTargets(v), true
}

// Len is the number of aliases.
func (a *Aliases) Len() int { return len(a.entries) }

// Warnings lists non-fatal problems (duplicate names).
func (a *Aliases) Warnings() []string { return a.warnings }

// SplitAliasTargets splits an alias right-hand side (or a .forward or
// :include: line) at commas outside double quotes, trims each piece and
// drops empty ones. A piece that is entirely one quoted string, such as
// "|/usr/bin/prog arg", is unquoted; quotes that are part of an address
// ("john doe"@example.com) are kept.
func SplitAliasTargets(value string) []string {
	var targets []string
	for value != "" {
		end := indexUnquoted(value, ',')
		if end < 0 {
			end = len(value)
		}
		piece := strings.TrimSpace(value[:end])
		if strings.HasPrefix(piece, `"`) {
			if unq, ok := unquote(piece); ok {
				piece = unq
			}
		}
		if piece != "" {
			targets = append(targets, piece)
		}
		if end == len(value) {
			break
		}
		value = value[end+1:]
	}
	return targets
}

// TargetKind classifies one alias destination.
type TargetKind int

const (
	TargetAddress TargetKind = iota // user@domain or a local name
	TargetCommand                   // |command
	TargetFile                      // /file/name
	TargetInclude                   // :include:/file/name
)

// ClassifyTarget tells what kind of destination one split target is.
func ClassifyTarget(target string) TargetKind {
	switch {
	case strings.HasPrefix(target, "|"):
		return TargetCommand
	case strings.HasPrefix(target, "/"):
		return TargetFile
	case len(target) >= len(":include:") && strings.EqualFold(target[:len(":include:")], ":include:"):
		return TargetInclude
	}
	return TargetAddress
}

// indexUnquoted returns the index of the first c outside double quotes,
// honouring backslash escapes inside quotes, or -1.
func indexUnquoted(s string, c byte) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch {
		case inQuote && s[i] == '\\':
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case !inQuote && s[i] == c:
			return i
		}
	}
	return -1
}

// unquote turns a string that is exactly one quoted string into its
// content, resolving backslash escapes.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i >= len(s) {
				return "", false
			}
			b.WriteByte(s[i])
		case '"':
			return b.String(), i == len(s)-1
		default:
			b.WriteByte(s[i])
		}
	}
	return "", false
}

// collapseSpace replaces runs of whitespace outside quotes with one space.
func collapseSpace(s string) string {
	var b strings.Builder
	inQuote, space := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !inQuote && isSpace(c) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		switch {
		case inQuote && c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			i++
			c = s[i]
		case c == '"':
			inQuote = !inQuote
		}
		b.WriteByte(c)
	}
	return b.String()
}
