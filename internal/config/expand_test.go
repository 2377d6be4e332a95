package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mapResolver(vars map[string]string, undefined *[]string) *resolver {
	return newResolver(func(n string) (string, bool) {
		v, ok := vars[n]
		return v, ok
	}, func(n string) { *undefined = append(*undefined, n) })
}

func TestExpand(t *testing.T) {
	vars := map[string]string{
		"myhostname":          "mx1.example.com",
		"mydomain":            "example.com",
		"myorigin":            "$mydomain",
		"nested":              "<${myorigin}>",
		"deeper":              "[$(nested)]",
		"empty":               "",
		"compatibility_level": "3.6",
		"ten":                 "10",
		"dollar":              "a$$b",
	}
	tests := []struct {
		in, want  string
		undefined []string
	}{
		{"plain text", "plain text", nil},
		{"$myhostname", "mx1.example.com", nil},
		{"${myhostname}", "mx1.example.com", nil},
		{"$(myhostname)", "mx1.example.com", nil},
		{"${ myhostname }", "mx1.example.com", nil},
		{"localhost.$mydomain, $myhostname", "localhost.example.com, mx1.example.com", nil},
		{"$myorigin", "example.com", nil},
		{"$deeper", "[<example.com>]", nil},
		{"$dollar", "a$b", nil},
		{"cost $$5", "cost $5", nil},
		{"lone $ sign", "lone $ sign", nil},
		{"trailing $", "trailing $", nil},
		{"$-x $/y", "$-x $/y", nil},
		{"$undefinedname!", "!", []string{"undefinedname"}},
		{"${myhostname?set}", "set", nil},
		{"${empty?set}", "", nil},
		{"${empty:unset}", "unset", nil},
		{"${myhostname:unset}", "", nil},
		{"${nosuch:fallback $mydomain}", "fallback example.com", []string{"nosuch"}},
		{"${myhostname?{yes $mydomain}:{no}}", "yes example.com", nil},
		{"${empty?{yes}:{no $mydomain}}", "no example.com", nil},
		{"${empty ? {yes} : {no}}", "no", nil},
		{"${myhostname?{only}}", "only", nil},
		{"${myhostname:{x}}", "", nil},
		{"${empty:{x}}", "x", nil},
		{"${stress?{10}:{300}}s", "300s", []string{"stress"}},
		{"${{$compatibility_level} <level {2} ? {subnet} : {host}}", "host", nil},
		{"${{$compatibility_level} <level {3.10} ? {lt} : {ge}}", "lt", nil},
		{"${{$compatibility_level} >=level {3.6} ? {ge} : {lt}}", "ge", nil},
		{"${{$compatibility_level} ==level {3.6.0} ? {eq} : {ne}}", "eq", nil},
		{"${{1} == {01} ? {eq} : {ne}}", "eq", nil},
		{"${{abc} != {abd} ? {ne} : {eq}}", "ne", nil},
		{"${{$ten} < {9} ? {lt} : {ge}}", "ge", nil},
		{"${{abc} < {abd} ? {lt} : {ge}}", "lt", nil},
		{"${{a} > {b} ? {gt}}", "", nil},
		{"${{2} <= {2} ? {{$mydomain}} : {x}}", "{example.com}", nil},
		{"${myhostname?{a}}} x}", "a} x}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var undefined []string
			got, err := mapResolver(vars, &undefined).expand(tt.in)
			if err != nil {
				t.Fatalf("expand(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(undefined, tt.undefined) {
				t.Errorf("undefined = %q, want %q", undefined, tt.undefined)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	vars := map[string]string{
		"a": "$b", "b": "${c}", "c": "x $a", // loop
		"self":   "$self",
		"ok":     "fine",
		"double": "$d1$d1", "d1": "$d2$d2", "d2": "$d3$d3", "d3": "$d4$d4", "d4": "$d5$d5",
		"d5": "$d6$d6", "d6": "$d7$d7", "d7": "$d8$d8", "d8": "$d9$d9", "d9": "$d10$d10",
		"d10": "$d11$d11", "d11": "$d12$d12", "d12": "$d13$d13", "d13": "$d14$d14",
		"d14": "$d15$d15", "d15": "$d16$d16", "d16": "$d17$d17", "d17": "$d18$d18",
		"d18": "$d19$d19", "d19": "$d20$d20", "d20": "$d21$d21", "d21": strings.Repeat("x", 1024),
	}
	tests := []struct{ in, want string }{
		{"$a", "loop: $a -> $b -> $c -> $a"},
		{"$self", "loop: $self -> $self"},
		{"${ok", "truncated macro reference"},
		{"$(ok", "truncated macro reference"},
		{"${}", "empty macro name"},
		{"${?x}", "empty macro name"},
		{"${ok!x}", "unexpected input"},
		{"${ok?{a}:{b}:{c}}", "unexpected input"},
		{"${ok:{a}:{b}}", "unexpected input"},
		{"${ok?{a}x}", "unexpected input"},
		{"${ok?{a", "truncated macro reference"},
		{"${{a} ~ {b} ? {x} : {y}}", "bad relational operator"},
		{"${{a} == {b} {x}}", "missing '?'"},
		{"${{a} == b ? {x}}", "expected '{'"},
		{"${{x} <level {2} ? {a} : {b}}", "bad compatibility level"},
		{"${{1} == {1} ? {a} : {b} junk}", "unexpected input"},
		{"$double", "longer than"},
		{strings.Repeat("${ok?", 200) + strings.Repeat("}", 200), "unreasonable macro nesting"},
	}
	for _, tt := range tests {
		t.Run(clip(tt.in), func(t *testing.T) {
			var undefined []string
			_, err := mapResolver(vars, &undefined).expand(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errExpansion) {
				t.Errorf("expand(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestReferencedNames(t *testing.T) {
	got := referencedNames("$a ${ b} $(c?x) $$d ${{$e} == {1} ? {$f} : {}} $")
	want := []string{"a", "b", "c", "e", "f"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("referencedNames = %q, want %q", got, want)
	}
}
