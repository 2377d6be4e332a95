package config

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// SplitList splits a Postfix list value on commas and/or whitespace. Text
// inside { } stays one element with the braces kept, so inline:{ a=b, c=d }
// and restriction arguments survive; an unbalanced { runs to the end.
func SplitList(s string) []string {
	var out []string
	start, depth := -1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0 && isListSep(c):
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

func isListSep(c byte) bool {
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// ParseBool parses a Postfix boolean: yes or no, in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no")
}

// ParseInt parses a decimal integer as Postfix does (an optional minus sign
// and digits, nothing else).
func ParseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("want a decimal integer")
	}
	return n, nil
}

func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("want digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("want digits")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("out of range")
	}
	return n, nil
}

// ParseSize parses a byte count: a non-negative decimal integer.
func ParseSize(s string) (int64, error) {
	n, err := parseUint(s, math.MaxInt64)
	if err != nil {
		return 0, fmt.Errorf("want a number of bytes: %w", err)
	}
	return int64(n), nil
}

var timeUnits = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
}

// ParseDuration parses a Postfix time value: digits followed by an optional
// unit s, m, h, d or w; a bare number uses defaultUnit.
func ParseDuration(s string, defaultUnit byte) (time.Duration, error) {
	digits, unit := s, defaultUnit
	if n := len(s); n > 0 && (s[n-1] < '0' || s[n-1] > '9') {
		digits, unit = s[:n-1], s[n-1]
	}
	scale, ok := timeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("bad time unit %q (want s, m, h, d or w)", string(unit))
	}
	n, err := parseUint(digits, uint64(math.MaxInt64/scale))
	if err != nil {
		return 0, fmt.Errorf("want a number with optional unit s, m, h, d or w: %w", err)
	}
	return time.Duration(n) * scale, nil
}

// level is a compatibility level major.minor.patch.
type level [3]uint64

// parseLevel parses a Postfix compatibility level such as 0, 2, 3.6 or 3.7.1.
func parseLevel(s string) (level, error) {
	var l level
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return l, fmt.Errorf("bad compatibility level %q", s)
	}
	for i, p := range parts {
		n, err := parseUint(p, math.MaxUint32)
		if err != nil {
			return l, fmt.Errorf("bad compatibility level %q", s)
		}
		l[i] = n
	}
	return l, nil
}

func (l level) compare(o level) int {
	for i := range l {
		switch {
		case l[i] < o[i]:
			return -1
		case l[i] > o[i]:
			return 1
		}
	}
	return 0
}

// checkValue validates an expanded value against the parameter's kind.
func (p Param) checkValue(v string) error {
	switch p.Kind {
	case KindBool:
		if _, err := ParseBool(v); err != nil {
			return err
		}
	case KindInt:
		n, err := ParseInt(v)
		if err != nil {
			return err
		}
		if n < p.Min {
			return fmt.Errorf("must be at least %d", p.Min)
		}
	case KindSize:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		if n < p.Min {
			return fmt.Errorf("must be at least %d", p.Min)
		}
	case KindTime:
		if _, err := ParseDuration(v, p.unit()); err != nil {
			return err
		}
	}
	if len(p.Enum) > 0 {
		values := []string{v}
		if p.Kind == KindList {
			values = SplitList(v)
		}
		for _, e := range values {
			if err := checkOneOf(p.Enum...)(e); err != nil {
				return fmt.Errorf("%q: %w", e, err)
			}
		}
	}
	if p.check != nil {
		return p.check(v)
	}
	return nil
}

func (p Param) checkElems(elems []string) error {
	if p.checkElem == nil {
		return nil
	}
	for _, e := range elems {
		if err := p.checkElem(e); err != nil {
			return err
		}
	}
	return nil
}

func (p Param) unit() byte {
	if p.Unit == 0 {
		return 's'
	}
	return p.Unit
}

// Bounds for /file/name list elements: files may name further files, as in
// Postfix, but not without end, and a list file is text, not a disk image.
const (
	maxListFileDepth = 8
	maxListFileBytes = 16 << 20
)

// expandFileList splits a list value and replaces each absolute /file/name
// element with the elements of that file (comment and blank lines skipped).
func expandFileList(value string, depth int) ([]string, error) {
	var out []string
	for _, e := range SplitList(value) {
		if !strings.HasPrefix(e, "/") {
			out = append(out, e)
			continue
		}
		if depth >= maxListFileDepth {
			return nil, fmt.Errorf("%s: list files nested more than %d deep", e, maxListFileDepth)
		}
		text, err := readListFile(e)
		if err != nil {
			return nil, err
		}
		elems, err := expandFileList(text, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e, err)
		}
		out = append(out, elems...)
	}
	return out, nil
}

func readListFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("list file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxListFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("list file %s: %w", name, err)
	}
	if len(b) > maxListFileBytes {
		return "", fmt.Errorf("list file %s: larger than %d bytes", name, maxListFileBytes)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		kept = append(kept, t)
	}
	return strings.Join(kept, "\n"), nil
}
