package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Entry is one "name = value" definition from main.cf.
type Entry struct {
	Name  string
	Value string // raw: unexpanded, continuation lines joined by one space
	Line  int    // line where the definition starts
}

// Warning is a non-fatal configuration problem, e.g. an unused parameter.
type Warning struct {
	File    string
	Line    int // 0 when the problem has no single line
	Message string
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message)
	}
	if w.File != "" {
		return fmt.Sprintf("%s: %s", w.File, w.Message)
	}
	return w.Message
}

// maxLineBytes bounds one physical line; longer input is an error rather
// than an unbounded allocation.
const maxLineBytes = 1 << 20

// logicalLine is a line plus its continuation lines.
type logicalLine struct {
	text string
	line int
}

// readLogicalLines implements Postfix's readlline(3): '#' lines (after
// optional whitespace) and blank lines are skipped, a line starting with
// whitespace continues the previous logical line, trailing whitespace is
// dropped. A continuation with nothing to continue is reported as a warning.
func readLogicalLines(r io.Reader, file string) ([]logicalLine, []Warning, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	var (
		out   []logicalLine
		warns []Warning
		cur   *logicalLine
		n     int
	)
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), " \t\r\n\v\f")
		trimmed := strings.TrimLeft(raw, " \t\r\v\f")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if trimmed != raw { // starts with whitespace: continuation
			if cur == nil {
				warns = append(warns, Warning{File: file, Line: n,
					Message: fmt.Sprintf("logical line must not start with whitespace: %q", raw)})
				continue
			}
			cur.text += " " + trimmed
			continue
		}
		out = append(out, logicalLine{text: raw, line: n})
		cur = &out[len(out)-1]
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	return out, warns, nil
}

// ParseMainCF parses main.cf syntax. file names the input in errors and
// warnings. Every definition is returned in file order; a later definition
// of the same name overrides an earlier one (Load applies this) and is
// reported as a warning, as Postfix does.
func ParseMainCF(r io.Reader, file string) ([]Entry, []Warning, error) {
	lines, warns, err := readLogicalLines(r, file)
	if err != nil {
		return nil, nil, err
	}
	entries := make([]Entry, 0, len(lines))
	seen := make(map[string]int, len(lines))
	for _, l := range lines {
		name, value, ok := strings.Cut(l.text, "=")
		name = strings.TrimSpace(name)
		if name == "" && ok {
			return nil, nil, fmt.Errorf("%s:%d: missing parameter name: %q", file, l.line, l.text)
		}
		if !ok || strings.ContainsAny(name, " \t\v\f\r") {
			return nil, nil, fmt.Errorf("%s:%d: missing '=' after parameter name: %q", file, l.line, l.text)
		}
		value = strings.TrimSpace(value)
		if i, dup := seen[name]; dup {
			warns = append(warns, Warning{File: file, Line: l.line,
				Message: fmt.Sprintf("overriding earlier entry: %s=%s (line %d)", name, entries[i].Value, entries[i].Line)})
		}
		seen[name] = len(entries)
		entries = append(entries, Entry{Name: name, Value: value, Line: l.line})
	}
	return entries, warns, nil
}
