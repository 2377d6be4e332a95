package lookup

import (
	"errors"
	"fmt"
	"strings"
)

// ruleKind distinguishes result rules from if/endif blocks.
type ruleKind int

const (
	ruleResult ruleKind = iota
	ruleIf
	ruleEndif
)

// matcher tests one search key against one pattern. groups are the
// submatches for $n substitution (groups[0] is the whole match); they are
// nil for matchers without groups.
type matcher func(key string) (groups []string, ok bool)

// rule is one line of a pattern table (regexp:, pcre:, cidr:).
type rule struct {
	kind   ruleKind
	match  matcher
	negate bool
	result template
	next   int // ruleIf: index just past the matching endif
}

// ruleList is a compiled pattern table: rules are tried in order, the
// first match wins, and an if block is skipped when its test fails.
type ruleList struct {
	rules []rule
	// prepare turns the key into what matchers expect, or reports that no
	// rule can match (cidr: a key that is not an IP address).
	prepare func(key string) (string, bool)
}

func (l *ruleList) lookup(key string) (string, bool, error) {
	if l.prepare != nil {
		var ok bool
		if key, ok = l.prepare(key); !ok {
			return "", false, nil
		}
	}
	for i := 0; i < len(l.rules); i++ {
		r := &l.rules[i]
		switch r.kind {
		case ruleEndif:
			continue
		case ruleIf:
			if _, ok := r.match(key); ok == r.negate {
				i = r.next - 1
			}
			continue
		}
		groups, ok := r.match(key)
		if ok == r.negate {
			continue
		}
		return r.result.expand(groups), true, nil
	}
	return "", false, nil
}

// blockParser tracks if/endif nesting while rules are appended.
// PatternTable is a compiled regexp:, pcre: or cidr: table, from a file
// or inline: rules tried in order, with if/endif blocks; first match wins.
type PatternTable struct {
	name  string
	rules compiledTable
}

// Lookup applies the rules to key.
func (t *PatternTable) Lookup(key string) (string, bool, error) { return t.rules.lookup(key) }

// Name is the table's name as given.
func (t *PatternTable) Name() string { return t.name }

// IsPattern reports that keys are patterns (see IsPattern).
func (t *PatternTable) IsPattern() bool { return true }

// compileBlocks runs the line loop that regexp, pcre and cidr tables share:
// "endif" closes a block, "if PATTERN" opens one (ifRule parses what
// follows "if"), any other line is a rule with a result (plainRule).
func compileBlocks(src *source, ifRule, plainRule func(text string) (rule, error)) ([]rule, error) {
	b := &blockParser{src: src}
	for _, l := range src.lines {
		keyword, rest := statement(l.text)
		switch keyword {
		case "endif":
			if rest != "" {
				return nil, src.errorf(l.line, "extra text after ENDIF: %q", rest)
			}
			if err := b.addEndif(l.line); err != nil {
				return nil, err
			}
		case "if":
			r, err := ifRule(rest)
			if err != nil {
				return nil, src.errorf(l.line, "%v", err)
			}
			b.addIf(r, l.line)
		default:
			r, err := plainRule(l.text)
			if err != nil {
				return nil, src.errorf(l.line, "%v", err)
			}
			b.rules = append(b.rules, r)
		}
	}
	return b.finish()
}

type blockParser struct {
	src   *source
	rules []rule
	open  []int // indexes of unclosed ifs
	lines []int // their line numbers, for the error message
}

func (b *blockParser) addIf(r rule, line int) {
	r.kind = ruleIf
	b.open = append(b.open, len(b.rules))
	b.lines = append(b.lines, line)
	b.rules = append(b.rules, r)
}

func (b *blockParser) addEndif(line int) error {
	if len(b.open) == 0 {
		return b.src.errorf(line, "ENDIF without matching IF")
	}
	last := len(b.open) - 1
	b.rules[b.open[last]].next = len(b.rules) + 1
	b.open, b.lines = b.open[:last], b.lines[:last]
	b.rules = append(b.rules, rule{kind: ruleEndif})
	return nil
}

func (b *blockParser) finish() ([]rule, error) {
	if len(b.open) > 0 {
		return nil, b.src.errorf(b.lines[len(b.lines)-1], "IF has no matching ENDIF")
	}
	return b.rules, nil
}

// statement recognises "if ..." and "endif" lines (case-insensitively, as
// Postfix does) and returns the text after the keyword.
func statement(text string) (keyword, rest string) {
	for _, kw := range []string{"endif", "if"} {
		if len(text) >= len(kw) && strings.EqualFold(text[:len(kw)], kw) &&
			(len(text) == len(kw) || !isAlnum(text[len(kw)])) {
			return kw, strings.TrimSpace(text[len(kw):])
		}
	}
	return "", text
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// template is a result string with $n references (regexp_table(5) TEXT
// SUBSTITUTION).
type template []templatePart

type templatePart struct {
	literal string
	group   int // > 0: substitute submatch group
}

func (t template) expand(groups []string) string {
	if len(t) == 1 && t[0].group == 0 {
		return t[0].literal
	}
	var b strings.Builder
	for _, p := range t {
		if p.group == 0 {
			b.WriteString(p.literal)
		} else if p.group < len(groups) {
			b.WriteString(groups[p.group])
		}
	}
	return b.String()
}

// parseTemplate parses "$1", "${1}", "$(1)" and "$$" in s. maxGroup is the
// number of groups in the pattern; references beyond it are errors, and
// any reference is an error when negated (a non-match has no groups).
func parseTemplate(s string, maxGroup int, negated bool) (template, error) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("empty macro name after '$'")
		}
		var name string
		switch s[i] {
		case '$':
			lit.WriteByte('$')
			continue
		case '{', '(':
			closer := byte('}')
			if s[i] == '(' {
				closer = ')'
			}
			end := strings.IndexByte(s[i+1:], closer)
			if end < 0 {
				return nil, fmt.Errorf("truncated macro reference in %q", s)
			}
			name = s[i+1 : i+1+end]
			i += end + 1
		default:
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
				j++
			}
			name = s[i:j]
			i = j - 1
		}
		n, ok := parseSmallInt(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("empty macro name in %q", s)
		case !ok:
			return nil, fmt.Errorf("non-numeric replacement index %q", name)
		case negated:
			return nil, errors.New("$number found in negative match replacement text")
		case n < 1 || n > maxGroup:
			return nil, fmt.Errorf("out of range replacement index %q", name)
		}
		if lit.Len() > 0 {
			t = append(t, templatePart{literal: lit.String()})
			lit.Reset()
		}
		t = append(t, templatePart{group: n})
	}
	if lit.Len() > 0 || len(t) == 0 {
		t = append(t, templatePart{literal: lit.String()})
	}
	return t, nil
}

func parseSmallInt(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		if n < 1_000_000 { // larger values are out of range anyway
			n = n*10 + int(s[i]-'0')
		}
	}
	return n, true
}
