package lookup

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Dialect selects between regexp_table(5) (POSIX) and pcre_table(5) rules.
// Both are compiled to Go's RE2 engine; constructs RE2 cannot express are
// rejected with file:line and the construct's name.
type Dialect int

const (
	// POSIX is regexp_table(5): flags i (on), m, x (on). Matching is
	// leftmost-longest and '.' matches newline unless m is given, as with
	// regcomp(3) without REG_NEWLINE.
	POSIX Dialect = iota
	// PCRE is pcre_table(5): flags i (on), m, s, x, A, U; E and X are
	// accepted with no effect ('$' without m already matches only at the
	// very end, and unknown escapes are always errors).
	PCRE
)

// ParseRegexp parses regexp_table(5) or pcre_table(5) source text; the
// table applies its rules to the whole key.
func ParseRegexp(name string, r io.Reader, d Dialect) (*PatternTable, error) {
	src, err := readSource(name, r)
	if err != nil {
		return nil, err
	}
	list, err := compileRegexpRules(src, d)
	if err != nil {
		return nil, err
	}
	return &PatternTable{name: name, rules: list}, nil
}

func compileRegexpRules(src *source, d Dialect) (*ruleList, error) {
	ifRule := func(rest string) (rule, error) {
		r, after, err := parseRegexpPattern(rest, d)
		if err == nil && after != "" {
			err = fmt.Errorf("extra text after IF statement: %q", after)
		}
		return r.rule, err
	}
	plainRule := func(text string) (rule, error) {
		r, result, err := parseRegexpPattern(text, d)
		if err != nil {
			return rule{}, err
		}
		if result == "" {
			return rule{}, errors.New("no replacement text after pattern")
		}
		r.result, err = parseTemplate(result, r.groups, r.negate)
		return r.rule, err
	}
	rules, err := compileBlocks(src, ifRule, plainRule)
	if err != nil {
		return nil, err
	}
	return &ruleList{rules: rules}, nil
}

// parsedPattern is a rule plus the group count its template may use.
type parsedPattern struct {
	rule
	groups int
}

// parseRegexpPattern parses "[!]/pattern/flags" at the start of s and
// returns the rest of the line (the result), trimmed.
func parseRegexpPattern(s string, d Dialect) (parsedPattern, string, error) {
	var p parsedPattern
	if strings.HasPrefix(s, "!") {
		p.negate = true
		s = s[1:]
	}
	if s == "" {
		return p, "", fmt.Errorf("missing pattern")
	}
	delim := s[0]
	if isAlnum(delim) || isSpace(delim) || delim == '\\' {
		return p, "", fmt.Errorf("pattern must start with a delimiter such as '/', not %q", delim)
	}
	end := -1
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == delim {
			end = i
			break
		}
	}
	if end < 0 {
		return p, "", fmt.Errorf("missing closing %q delimiter", delim)
	}
	pattern := s[1:end]
	rest := s[end+1:]
	flagEnd := strings.IndexAny(rest, " \t\v\f\r")
	if flagEnd < 0 {
		flagEnd = len(rest)
	}
	flags, result := rest[:flagEnd], strings.TrimSpace(rest[flagEnd:])
	re, err := compilePattern(pattern, flags, d)
	if err != nil {
		return p, "", err
	}
	p.groups = re.NumSubexp()
	negate := p.negate
	p.match = func(key string) ([]string, bool) {
		if negate {
			return nil, re.MatchString(key)
		}
		groups := re.FindStringSubmatch(key)
		return groups, groups != nil
	}
	return p, result, nil
}

// compilePattern applies the table flags and translates to RE2 syntax.
func compilePattern(pattern, flags string, d Dialect) (*regexp.Regexp, error) {
	caseless, multiline, dotall, extended, anchored, ungreedy := true, false, false, d == POSIX, false, false
	for _, f := range flags {
		switch {
		case f == 'i':
			caseless = !caseless
		case f == 'm':
			multiline = !multiline
		case f == 'x':
			extended = !extended
		case d == PCRE && f == 's':
			dotall = !dotall
		case d == PCRE && f == 'A':
			anchored = !anchored
		case d == PCRE && f == 'U':
			ungreedy = !ungreedy
		case d == PCRE && (f == 'E' || f == 'X'):
		default:
			return nil, fmt.Errorf("unknown regexp option %q", f)
		}
	}
	if d == POSIX {
		if !extended {
			return nil, fmt.Errorf("flag x (POSIX basic regular expressions) is not supported; write an extended expression")
		}
		// Without REG_NEWLINE, POSIX '.' matches newline and ^/$ only
		// match at the ends; the m flag turns REG_NEWLINE on.
		dotall = !multiline
	} else if extended {
		pattern = stripExtended(pattern)
	}
	if err := checkRE2Constructs(pattern); err != nil {
		return nil, err
	}
	var prefix strings.Builder
	for _, on := range []struct {
		set  bool
		flag byte
	}{{caseless, 'i'}, {multiline, 'm'}, {dotall, 's'}, {ungreedy, 'U'}} {
		if on.set {
			prefix.WriteByte(on.flag)
		}
	}
	expr := pattern
	if anchored {
		expr = `\A(?:` + expr + `)`
	}
	if prefix.Len() > 0 {
		expr = "(?" + prefix.String() + ")" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression %q: %w", pattern, err)
	}
	if d == POSIX {
		re.Longest()
	}
	return re, nil
}

// stripExtended implements PCRE's x flag, which RE2 lacks: whitespace
// outside character classes is dropped and '#' starts a comment that runs
// to the end of the pattern (a logical line has no newlines left).
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			if isSpace(p[i+1]) {
				fmt.Fprintf(&b, `\x%02x`, p[i+1])
			} else {
				b.WriteString(p[i : i+2])
			}
			i++
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		case isSpace(c):
			continue
		case c == '#':
			return b.String()
		}
		b.WriteByte(c)
	}
	return b.String()
}

// checkRE2Constructs names the Perl/POSIX features RE2 does not have, so
// the error says what to change instead of a bare "invalid escape".
func checkRE2Constructs(p string) error {
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' {
			if i+1 >= len(p) {
				return fmt.Errorf("trailing backslash in pattern")
			}
			n := p[i+1]
			switch {
			case inClass:
			case n >= '1' && n <= '9':
				return fmt.Errorf(`backreference \%c is not supported (RE2 syntax)`, n)
			case n == 'k' || n == 'g':
				return fmt.Errorf(`backreference \%c is not supported (RE2 syntax)`, n)
			case n == 'K':
				return fmt.Errorf(`\K (match reset) is not supported (RE2 syntax)`)
			case n == 'G':
				return fmt.Errorf(`\G (continuation anchor) is not supported (RE2 syntax)`)
			case n == 'Q':
				// Quoted literal text runs to \E; nothing inside is special.
				if end := strings.Index(p[i+2:], `\E`); end >= 0 {
					i += 2 + end + 1
					continue
				}
				return nil
			}
			i++
			continue
		}
		if inClass {
			if c == '[' && i+1 < len(p) && (p[i+1] == ':' || p[i+1] == '=' || p[i+1] == '.') {
				if end := strings.Index(p[i+2:], string(p[i+1])+"]"); end >= 0 {
					i += 2 + end + 1
				}
				continue
			}
			if c == ']' {
				inClass = false
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			if i+1 < len(p) && p[i+1] == '^' {
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				i++
			}
		case '(':
			if err := checkGroupPrefix(p[i+1:]); err != nil {
				return err
			}
		case '*', '+', '?', '}':
			if i+1 < len(p) && p[i+1] == '+' {
				return fmt.Errorf("possessive quantifier %q is not supported (RE2 syntax)", p[i:i+2])
			}
		}
	}
	return nil
}

// checkGroupPrefix inspects the text after '(' for unsupported group kinds.
func checkGroupPrefix(s string) error {
	unsupported := []struct{ prefix, name string }{
		{"?=", "lookahead (?=...)"},
		{"?!", "negative lookahead (?!...)"},
		{"?<=", "lookbehind (?<=...)"},
		{"?<!", "negative lookbehind (?<!...)"},
		{"?>", "atomic group (?>...)"},
		{"?|", "branch reset group (?|...)"},
		{"?(", "conditional group (?(...)...)"},
		{"?#", "comment group (?#...)"},
		{"?R", "recursion (?R)"},
		{"?&", "subroutine call (?&name)"},
		{"?P>", "subroutine call (?P>name)"},
		{"?P=", "named backreference (?P=name)"},
		{"*", "backtracking verb (*...)"},
	}
	for _, u := range unsupported {
		if strings.HasPrefix(s, u.prefix) {
			return fmt.Errorf("%s is not supported (RE2 syntax)", u.name)
		}
	}
	if len(s) >= 2 && s[0] == '?' && (s[1] >= '0' && s[1] <= '9' || s[1] == '+' || s[1] == '-' && len(s) > 2 && s[2] >= '0' && s[2] <= '9') {
		return fmt.Errorf("subroutine call (?%c...) is not supported (RE2 syntax)", s[1])
	}
	return nil
}
