package lookup

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// logicalLine is one logical line of a table source: a line that starts
// with non-whitespace plus the continuation lines that follow it.
type logicalLine struct {
	text string
	line int // number of the first physical line, for error messages
}

// source is the text of a table, already split into logical lines.
type source struct {
	name  string // file name (or inline spec) used in "name:line: reason"
	lines []logicalLine
}

// errorf formats a syntax error the way Postfix admins expect: file:line.
func (s *source) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", s.name, line, fmt.Sprintf(format, args...))
}

// maxLineBytes bounds one physical line so a corrupt or binary file cannot
// exhaust memory.
const maxLineBytes = 1 << 20

// readSource splits r into logical lines with Postfix's readlline rules:
// empty and whitespace-only lines and lines whose first non-whitespace
// character is '#' are skipped; a line starting with whitespace continues
// the previous logical line and is appended verbatim; trailing whitespace
// (including CR) is removed.
func readSource(name string, r io.Reader) (*source, error) {
	src := &source{name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if isSpace(raw[0]) {
			if len(src.lines) == 0 {
				return nil, src.errorf(lineNo, "logical line must not start with whitespace")
			}
			last := &src.lines[len(src.lines)-1]
			last.text += strings.TrimRight(raw, " \t\r\n\v\f")
			continue
		}
		src.lines = append(src.lines, logicalLine{text: strings.TrimRight(raw, " \t\r\n\v\f"), line: lineNo})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return src, nil
}

// sourceFromItems builds a source from the items of an inline spec such as
// regexp:{ {rule-1}, {rule-2} }, one logical line per item (Postfix 3.7).
func sourceFromItems(name string, items []string) *source {
	src := &source{name: name}
	for i, item := range items {
		src.lines = append(src.lines, logicalLine{text: item, line: i + 1})
	}
	return src
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// splitKeyValue splits "key whitespace value".
func splitKeyValue(s string) (key, value string, ok bool) {
	i := strings.IndexAny(s, " \t\v\f\r")
	if i < 0 {
		return s, "", false
	}
	value = strings.TrimSpace(s[i:])
	return s[:i], value, value != ""
}

// splitBraceList splits the inside of "{ a, {b c}, type:{x, y} }" at commas
// and whitespace outside braces, like Postfix's mystrtokq. Items that are
// wholly enclosed in braces are returned without them and trimmed (extpar).
func splitBraceList(s string) ([]string, error) {
	var items []string
	depth, start := 0, -1
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		item := s[start:end]
		start = -1
		if strings.HasPrefix(item, "{") {
			inner, err := stripBraces(item)
			if err != nil {
				return err
			}
			item = inner
		}
		items = append(items, item)
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced '}' in %q", s)
			}
		case depth == 0 && (c == ',' || isSpace(c)):
			if err := flush(i); err != nil {
				return nil, err
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("missing '}' in %q", s)
	}
	if err := flush(len(s)); err != nil {
		return nil, err
	}
	return items, nil
}

// stripBraces turns "{ text }" into "text". Text after the closing brace
// is an error, as in Postfix's extpar.
func stripBraces(s string) (string, error) {
	if !strings.HasPrefix(s, "{") {
		return "", fmt.Errorf("expected '{' in %q", s)
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				if i != len(s)-1 {
					return "", fmt.Errorf("syntax error after '}' in %q", s)
				}
				return strings.TrimSpace(s[1:i]), nil
			}
		}
	}
	return "", fmt.Errorf("missing '}' in %q", s)
}
