package lookup

import (
	"strings"
	"testing"
)

func TestRegexpLookups(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		in      string
		cases   []lookupCase
	}{
		{
			name: "case-insensitive by default, i toggles",
			in:   "/^ABC$/ upper\n/^xyz$/i sensitive\n",
			cases: []lookupCase{
				{"abc", "upper", true}, {"ABC", "upper", true},
				{"xyz", "sensitive", true}, {"XYZ", "", false},
			},
		},
		{
			name: "substitution forms",
			in:   "/^(.*)-outgoing@(.*)$/ 550 Use ${1}@$2 instead $$5 $(1)\n",
			cases: []lookupCase{
				{"list-outgoing@example.com", "550 Use list@example.com instead $5 list", true},
			},
		},
		{
			name:  "unmatched optional group is empty",
			in:    "/a(b)?c(d)?/ [$1][$2]\n",
			cases: []lookupCase{{"ac", "[][]", true}, {"abcd", "[b][d]", true}},
		},
		{
			name:  "first match wins",
			in:    "/a/ first\n/a/ second\n",
			cases: []lookupCase{{"a", "first", true}},
		},
		{
			name:  "negated",
			in:    "!/^owner-/ not-owner\n",
			cases: []lookupCase{{"owner-x", "", false}, {"x", "not-owner", true}},
		},
		{
			name: "if endif and nesting",
			in:   "if /@example\\.com$/\nif !/^postmaster@/\n/^a/ a-user\nendif\n/^postmaster@/ pm\nENDIF\n/./ outer\n",
			cases: []lookupCase{
				{"alice@example.com", "a-user", true},
				{"postmaster@example.com", "pm", true},
				{"bob@example.com", "outer", true},
				{"alice@example.org", "outer", true},
			},
		},
		{
			name:  "other delimiter and escaped delimiter",
			in:    "#comment\n~^[[:alnum:]+/]{6,}$~ base64\n/a\\/b/ slash\n",
			cases: []lookupCase{{"abc/def", "base64", true}, {"x a/b", "slash", true}},
		},
		{
			name:  "posix dot matches newline unless m",
			in:    "/^a.b$/ dot\n/^c$/m line\n",
			cases: []lookupCase{{"a\nb", "dot", true}, {"x\nc\ny", "line", true}},
		},
		{
			name:  "posix leftmost-longest",
			in:    "/(a|ab)(c|bcd)/ [$1][$2]\n",
			cases: []lookupCase{{"abcd", "[a][bcd]", true}},
		},
		{
			name:    "pcre leftmost-first",
			dialect: PCRE,
			in:      "/x(a|ab)/ [$1]\n",
			cases:   []lookupCase{{"xab", "[a]", true}},
		},
		{
			name:    "pcre flags",
			dialect: PCRE,
			in:      "/^a.b$/ nodot\n/^c.d$/s dotall\n/ e f # comment/x ext\n/y/A anchored\n",
			cases:   []lookupCase{{"a\nb", "", false}, {"c\nd", "dotall", true}, {"xef", "ext", true}, {"ay", "", false}, {"ya", "anchored", true}},
		},
		{
			name:    "pcre perl classes",
			dialect: PCRE,
			in:      "/^\\d+\\.\\d+$/ number\n/^(?<user>[^@]+)@/ named-$1\n",
			cases:   []lookupCase{{"1.5", "number", true}, {"u@x", "named-u", true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := ParseRegexp("t", strings.NewReader(tt.in), tt.dialect)
			if err != nil {
				t.Fatal(err)
			}
			checkLookups(t, tab, tt.cases)
		})
	}
}

func TestRegexpUngreedy(t *testing.T) {
	tab, err := ParseRegexp("t", strings.NewReader("/(z+)/U u-$1\n/(y+)/ g-$1\n"), PCRE)
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, tab, []lookupCase{{"zzz", "u-z", true}, {"yyy", "g-yyy", true}})
}

func TestRegexpErrors(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		in      string
		want    string // substring of the error; every error starts with "t:<line>: "
	}{
		{name: "backreference", in: "/ok/ x\n/(a)\\1/ x\n", want: `t:2: backreference \1 is not supported`},
		{name: "lookahead", dialect: PCRE, in: "/foo(?=bar)/ x\n", want: "t:1: lookahead (?=...) is not supported"},
		{name: "negative lookahead", dialect: PCRE, in: "/foo(?!bar)/ x\n", want: "t:1: negative lookahead"},
		{name: "lookbehind", dialect: PCRE, in: "/(?<=a)b/ x\n", want: "t:1: lookbehind"},
		{name: "atomic", dialect: PCRE, in: "/(?>a+)b/ x\n", want: "t:1: atomic group"},
		{name: "possessive", dialect: PCRE, in: "/a++b/ x\n", want: `t:1: possessive quantifier "++"`},
		{name: "possessive brace", dialect: PCRE, in: "/a{2}+b/ x\n", want: `t:1: possessive quantifier "}+"`},
		{name: "named backreference", dialect: PCRE, in: "/(?<n>a)\\k<n>/ x\n", want: `t:1: backreference \k`},
		{name: "bad regexp", in: "/(a/ x\n", want: "t:1: bad regular expression"},
		{name: "unknown flag", in: "/a/q x\n", want: `t:1: unknown regexp option 'q'`},
		{name: "s is pcre only", in: "/a/s x\n", want: `t:1: unknown regexp option 's'`},
		{name: "basic re", in: "/a/x x\n", want: "t:1: flag x (POSIX basic regular expressions) is not supported"},
		{name: "no result", in: "/a/\n", want: "t:1: no replacement text"},
		{name: "no closing delimiter", in: "/abc x\n", want: "t:1: missing closing '/' delimiter"},
		{name: "alnum delimiter", in: "abc x\n", want: "t:1: pattern must start with a delimiter"},
		{name: "out of range", in: "/a(b)c/ $2\n", want: `t:1: out of range replacement index "2"`},
		{name: "zero index", in: "/a(b)c/ $0\n", want: `t:1: out of range replacement index "0"`},
		{name: "non numeric", in: "/a(b)c/ $1Y\n", want: `t:1: non-numeric replacement index "1Y"`},
		{name: "empty macro", in: "/a/ x$\n", want: "t:1: empty macro name"},
		{name: "empty macro punct", in: "/a/ x$-y\n", want: "t:1: empty macro name"},
		{name: "truncated", in: "/a/ ${1\n", want: "t:1: truncated macro reference"},
		{name: "negated with group", in: "!/a(b)c/ $1\n", want: "t:1: $number found in negative match"},
		{name: "endif without if", in: "endif\n", want: "t:1: ENDIF without matching IF"},
		{name: "if without endif", in: "/a/ x\nif /a/\n/b/ y\n", want: "t:2: IF has no matching ENDIF"},
		{name: "text after if", in: "if /a/ x\nendif\n", want: `t:1: extra text after IF statement: "x"`},
		{name: "text after endif", in: "if /a/\nendif x\n", want: `t:2: extra text after ENDIF`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRegexp("t", strings.NewReader(tt.in), tt.dialect)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckRE2ConstructsAllowsLookalikes(t *testing.T) {
	for _, p := range []string{`[+]+`, `a+`, `[(?=]`, `\(?=`, `\Q(?=\E`, `(?i)a`, `(?P<n>a)`, `(?:a)`, `[\1]`, `[[:alpha:]]+`, `a{2,3}`} {
		if err := checkRE2Constructs(p); err != nil {
			t.Errorf("checkRE2Constructs(%q) = %v, want nil", p, err)
		}
	}
}
