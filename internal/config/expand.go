package config

import (
	"errors"
	"fmt"
	"strings"
)

// Limits that keep hostile or broken input from exhausting the stack or
// memory: Postfix stops at 100 nested macro calls as well.
const (
	maxExpandDepth = 100
	maxExpandedLen = 1 << 20
)

// errExpansion marks expansion failures (loops, malformed macros).
var errExpansion = errors.New("parameter expansion")

// resolver expands parameter values in one context: main.cf and defaults,
// or those plus one master.cf service's -o overrides. Results are memoized,
// so each name is expanded once and a chain of self-doubling references
// cannot take exponential time.
type resolver struct {
	raw         func(name string) (string, bool)
	onUndefined func(name string) // may be nil
	memo        map[string]string
	active      []string // names being expanded, outermost first
	depth       int      // nested expand calls
}

func newResolver(raw func(string) (string, bool), onUndefined func(string)) *resolver {
	return &resolver{raw: raw, onUndefined: onUndefined, memo: map[string]string{}}
}

// value returns the fully expanded value of name; an undefined name is empty.
func (r *resolver) value(name string) (string, error) {
	if v, ok := r.memo[name]; ok {
		return v, nil
	}
	for i, a := range r.active {
		if a == name {
			chain := append(append([]string{}, r.active[i:]...), name)
			return "", fmt.Errorf("%w: loop: $%s", errExpansion, strings.Join(chain, " -> $"))
		}
	}
	raw, ok := r.raw(name)
	if !ok {
		if r.onUndefined != nil {
			r.onUndefined(name)
		}
		r.memo[name] = ""
		return "", nil
	}
	r.active = append(r.active, name)
	v, err := r.expand(raw)
	r.active = r.active[:len(r.active)-1]
	if err != nil {
		return "", err
	}
	r.memo[name] = v
	return v, nil
}

// expand replaces every macro in s. "$$" is a literal "$" (as in Postfix);
// a "$" followed by anything else that cannot start a macro is kept as is.
func (r *resolver) expand(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > maxExpandDepth {
		return "", fmt.Errorf("%w: unreasonable macro nesting in %q", errExpansion, clip(s))
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i += 2
		case next == '{' || next == '(':
			closer := byte('}')
			if next == '(' {
				closer = ')'
			}
			end := matchClose(s, i+1, next, closer)
			if end < 0 {
				return "", fmt.Errorf("%w: truncated macro reference %q", errExpansion, clip(s[i:]))
			}
			v, err := r.macro(s[i+2 : end])
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		case isNameChar(next):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			v, err := r.value(s[i+1 : j])
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = j
		default:
			b.WriteByte('$')
			i++
		}
		if b.Len() > maxExpandedLen {
			return "", fmt.Errorf("%w: expanded value longer than %d bytes", errExpansion, maxExpandedLen)
		}
	}
	return b.String(), nil
}

// macro evaluates the inside of ${...} or $(...).
func (r *resolver) macro(inner string) (string, error) {
	t := strings.TrimSpace(inner)
	if strings.HasPrefix(t, "{") {
		return r.relational(t)
	}
	j := 0
	for j < len(t) && isNameChar(t[j]) {
		j++
	}
	name := t[:j]
	if name == "" {
		return "", fmt.Errorf("%w: empty macro name in %q", errExpansion, clip(inner))
	}
	rest := strings.TrimLeft(t[j:], " \t")
	if rest == "" {
		return r.value(name)
	}
	op := rest[0]
	if op != '?' && op != ':' {
		return "", fmt.Errorf("%w: unexpected input %q after macro name %q", errExpansion, clip(rest), name)
	}
	arg := strings.TrimLeft(rest[1:], " \t")
	first, second := arg, ""
	if strings.HasPrefix(arg, "{") {
		var after string
		var err error
		first, after, err = braced(arg)
		if err != nil {
			return "", err
		}
		if after != "" {
			if op != '?' || after[0] != ':' {
				return "", fmt.Errorf("%w: unexpected input %q in ${%s}", errExpansion, clip(after), clip(inner))
			}
			second, after, err = braced(strings.TrimLeft(after[1:], " \t"))
			if err != nil {
				return "", err
			}
			if after != "" {
				return "", fmt.Errorf("%w: unexpected input %q in ${%s}", errExpansion, clip(after), clip(inner))
			}
		}
	}
	v, err := r.value(name)
	if err != nil {
		return "", err
	}
	set := v != ""
	switch {
	case op == '?' && set, op == ':' && !set:
		return r.expand(first)
	case op == '?':
		return r.expand(second)
	}
	return "", nil
}

// relational evaluates ${{text1} op {text2} ? {value1} : {value2}}, where op
// is ==, !=, <, <=, > or >=, optionally followed by "level" to compare
// compatibility levels such as 3.6.
func (r *resolver) relational(t string) (string, error) {
	left, rest, err := braced(t)
	if err != nil {
		return "", err
	}
	n := 0
	for n < len(rest) && strings.IndexByte("=!<>", rest[n]) >= 0 {
		n++
	}
	op := rest[:n]
	rest = rest[n:]
	byLevel := strings.HasPrefix(rest, "level")
	if byLevel {
		rest = rest[len("level"):]
	}
	switch op {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return "", fmt.Errorf("%w: bad relational operator %q in %q", errExpansion, op, clip(t))
	}
	right, rest, err := braced(strings.TrimLeft(rest, " \t"))
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(rest, "?") {
		return "", fmt.Errorf("%w: missing '?' in %q", errExpansion, clip(t))
	}
	ifTrue, rest, err := braced(strings.TrimLeft(rest[1:], " \t"))
	if err != nil {
		return "", err
	}
	ifFalse := ""
	if strings.HasPrefix(rest, ":") {
		ifFalse, rest, err = braced(strings.TrimLeft(rest[1:], " \t"))
		if err != nil {
			return "", err
		}
	}
	if rest != "" {
		return "", fmt.Errorf("%w: unexpected input %q in %q", errExpansion, clip(rest), clip(t))
	}
	x, err := r.expand(left)
	if err != nil {
		return "", err
	}
	y, err := r.expand(right)
	if err != nil {
		return "", err
	}
	cmp, err := compareOperands(x, y, byLevel)
	if err != nil {
		return "", err
	}
	var hold bool
	switch op {
	case "==":
		hold = cmp == 0
	case "!=":
		hold = cmp != 0
	case "<":
		hold = cmp < 0
	case "<=":
		hold = cmp <= 0
	case ">":
		hold = cmp > 0
	case ">=":
		hold = cmp >= 0
	}
	if hold {
		return r.expand(ifTrue)
	}
	return r.expand(ifFalse)
}

// compareOperands compares as compatibility levels, as integers when both
// are decimal, and as strings otherwise.
func compareOperands(x, y string, byLevel bool) (int, error) {
	if byLevel {
		lx, err := parseLevel(x)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errExpansion, err)
		}
		ly, err := parseLevel(y)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errExpansion, err)
		}
		return lx.compare(ly), nil
	}
	nx, errX := ParseInt(x)
	ny, errY := ParseInt(y)
	if errX == nil && errY == nil {
		switch {
		case nx < ny:
			return -1, nil
		case nx > ny:
			return 1, nil
		}
		return 0, nil
	}
	return strings.Compare(x, y), nil
}

// braced splits "{text} rest" into the trimmed text and the trimmed rest.
func braced(s string) (inner, rest string, err error) {
	if !strings.HasPrefix(s, "{") {
		return "", "", fmt.Errorf("%w: expected '{' at %q", errExpansion, clip(s))
	}
	end := matchClose(s, 0, '{', '}')
	if end < 0 {
		return "", "", fmt.Errorf("%w: missing '}' in %q", errExpansion, clip(s))
	}
	return strings.TrimSpace(s[1:end]), strings.TrimLeft(s[end+1:], " \t"), nil
}

// matchClose returns the index of the delimiter closing s[open], counting
// nested pairs, or -1.
func matchClose(s string, open int, opener, closer byte) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case opener:
			depth++
		case closer:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// referencedNames returns the parameter names a raw value refers to with
// $name, ${name...} or $(name...), without evaluating anything.
func referencedNames(s string) []string {
	var out []string
	for i := 0; i < len(s)-1; i++ {
		if s[i] != '$' {
			continue
		}
		j := i + 1
		if s[j] == '$' {
			i++
			continue
		}
		if s[j] == '{' || s[j] == '(' {
			j++
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
		}
		k := j
		for k < len(s) && isNameChar(s[k]) {
			k++
		}
		if k > j {
			out = append(out, s[j:k])
		}
	}
	return out
}

// clip shortens text quoted in error messages.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
