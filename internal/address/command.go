package address

import (
	"fmt"
	"strings"
)

// Params are the ESMTP parameters after a MAIL FROM or RCPT TO path, keyed
// by upper-cased keyword. A keyword without "=value" maps to "".
type Params map[string]string

// ParseMailArg parses the argument of MAIL, e.g.
// "FROM:<a@example.com> SIZE=100 BODY=8BITMIME", with strict options.
func ParseMailArg(arg string) (Path, Params, error) { return Options{}.ParseMailArg(arg) }

// ParseRcptArg parses the argument of RCPT, e.g. "TO:<b@example.com>
// NOTIFY=NEVER", with strict options.
func ParseRcptArg(arg string) (Path, Params, error) { return Options{}.ParseRcptArg(arg) }

// ParseMailArg parses the argument of MAIL ("FROM:<path> params...").
func (o Options) ParseMailArg(arg string) (Path, Params, error) {
	return o.parseCommandArg("FROM:", arg)
}

// ParseRcptArg parses the argument of RCPT ("TO:<path> params...").
func (o Options) ParseRcptArg(arg string) (Path, Params, error) {
	return o.parseCommandArg("TO:", arg)
}

func (o Options) parseCommandArg(keyword, arg string) (Path, Params, error) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return Path{}, nil, fmt.Errorf("%w: expected %q, got %q", ErrSyntax, keyword, arg)
	}
	if err := checkBytes(arg); err != nil {
		return Path{}, nil, err
	}
	// RFC 5321 has no space after the colon, but many clients send one and
	// Postfix tolerates it.
	rest := strings.TrimLeft(arg[len(keyword):], " ")
	pathText, paramText, err := splitPath(rest)
	if err != nil {
		return Path{}, nil, err
	}
	path, err := o.ParsePath(pathText)
	if err != nil {
		return Path{}, nil, err
	}
	params, err := parseParams(paramText)
	if err != nil {
		return Path{}, nil, err
	}
	return path, params, nil
}

// splitPath separates the path from the parameters. A bracketed path ends
// at the first '>' outside a quoted string, so quoted local parts may
// contain spaces and '>'.
func splitPath(s string) (path, params string, err error) {
	end := -1
	if strings.HasPrefix(s, "<") {
		inQuote := false
		for i := 1; i < len(s) && end < 0; i++ {
			switch {
			case inQuote && s[i] == '\\':
				i++
			case s[i] == '"':
				inQuote = !inQuote
			case !inQuote && s[i] == '>':
				end = i + 1
			}
		}
		if end < 0 {
			return "", "", fmt.Errorf("%w: missing closing '>' in %q", ErrSyntax, s)
		}
	} else if end = strings.IndexByte(s, ' '); end < 0 {
		end = len(s)
	}
	path, params = s[:end], s[end:]
	if params != "" && params[0] != ' ' {
		return "", "", fmt.Errorf("%w: no space between path and parameters in %q", ErrSyntax, s)
	}
	return path, params, nil
}

// parseParams parses space-separated esmtp-param tokens (RFC 5321 4.1.2,
// with RFC 6531's UTF-8 values).
func parseParams(s string) (Params, error) {
	params := Params{}
	for field := range strings.FieldsSeq(s) {
		key, value, hasValue := strings.Cut(field, "=")
		if !validKeyword(key) {
			return nil, fmt.Errorf("%w: bad keyword in %q", ErrBadParameter, field)
		}
		if hasValue && !validParamValue(value) {
			return nil, fmt.Errorf("%w: bad value in %q", ErrBadParameter, field)
		}
		key = strings.ToUpper(key)
		if _, dup := params[key]; dup {
			return nil, fmt.Errorf("%w: %s given twice", ErrBadParameter, key)
		}
		params[key] = value
	}
	return params, nil
}

// validKeyword: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
func validKeyword(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validParamValue: esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii).
func validParamValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return true
}
