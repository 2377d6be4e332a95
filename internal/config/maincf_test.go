package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMainCF(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Entry
		warns []string
	}{
		{"empty", "", []Entry{}, nil},
		{"simple", "myhostname = mx1.example.com\n", []Entry{{"myhostname", "mx1.example.com", 1}}, nil},
		{"no spaces", "relayhost=[smtp.isp.example]:587\n", []Entry{{"relayhost", "[smtp.isp.example]:587", 1}}, nil},
		{"empty value", "relayhost =\n", []Entry{{"relayhost", "", 1}}, nil},
		{"comments and blank lines",
			"# comment\n\n   # indented comment\nmyorigin = $mydomain\n\t\n",
			[]Entry{{"myorigin", "$mydomain", 4}}, nil},
		{"hash inside value is not a comment", "myorigin = a # b\n", []Entry{{"myorigin", "a # b", 1}}, nil},
		{"continuation",
			"mydestination = $myhostname,\n    localhost.$mydomain,\n\tlocalhost\nrelayhost =\n",
			[]Entry{{"mydestination", "$myhostname, localhost.$mydomain, localhost", 1}, {"relayhost", "", 4}}, nil},
		{"continuation across comments and blank lines",
			"mynetworks = 127.0.0.0/8\n# note\n\n  [::1]/128\n",
			[]Entry{{"mynetworks", "127.0.0.0/8 [::1]/128", 1}}, nil},
		{"trailing whitespace and CRLF", "myorigin = example.com \t\r\n", []Entry{{"myorigin", "example.com", 1}}, nil},
		{"override keeps both, warns",
			"myorigin = a\nmyorigin = b\n",
			[]Entry{{"myorigin", "a", 1}, {"myorigin", "b", 2}},
			[]string{"main.cf:2: overriding earlier entry: myorigin=a (line 1)"}},
		{"leading whitespace on first line is ignored with a warning",
			"  stray = x\nmyorigin = a\n",
			[]Entry{{"myorigin", "a", 2}},
			[]string{`main.cf:1: logical line must not start with whitespace: "  stray = x"`}},
		{"value with equals", "smtpd_banner = a=b\n", []Entry{{"smtpd_banner", "a=b", 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := ParseMainCF(strings.NewReader(tt.input), "main.cf")
			if err != nil {
				t.Fatalf("ParseMainCF: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("entries = %#v\nwant %#v", got, tt.want)
			}
			var ws []string
			for _, w := range warns {
				ws = append(ws, w.String())
			}
			if !reflect.DeepEqual(ws, tt.warns) {
				t.Errorf("warnings = %q, want %q", ws, tt.warns)
			}
		})
	}
}

func TestParseMainCFErrors(t *testing.T) {
	tests := []struct {
		input, want string
	}{
		{"novalue\n", `main.cf:1: missing '=' after parameter name: "novalue"`},
		{"# c\nfoo bar = x\n", `main.cf:2: missing '=' after parameter name: "foo bar = x"`},
		{"a = 1\n\n= x\n", `main.cf:3: missing parameter name: "= x"`},
		{"a = 1\n" + strings.Repeat("x", maxLineBytes+10) + "\n", "main.cf:2: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		_, _, err := ParseMainCF(strings.NewReader(tt.input), "main.cf")
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseMainCF(%.30q) error = %v, want %s", tt.input, err, tt.want)
		}
	}
}
