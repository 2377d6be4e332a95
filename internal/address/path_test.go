package address

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		opts    Options
		want    Path
		wantErr error
	}{
		{name: "plain", in: "<user@example.com>", want: Path{Local: "user", Domain: "example.com"}},
		{name: "null", in: "<>", want: Path{Null: true}},
		{name: "postmaster unqualified", in: "<Postmaster>", want: Path{Local: "Postmaster"}},
		{name: "dot atom", in: "<first.last+tag@sub.example.co.jp>", want: Path{Local: "first.last+tag", Domain: "sub.example.co.jp"}},
		{name: "atext specials", in: "<!#$%&'*+-/=?^_`{|}~@example.com>", want: Path{Local: "!#$%&'*+-/=?^_`{|}~", Domain: "example.com"}},
		// go-smtp strips these quotes; a relay must not.
		{name: "quoted with space", in: `<"john doe"@example.com>`, want: Path{Local: `"john doe"`, Domain: "example.com", Quoted: true}},
		{name: "quoted at sign", in: `<"user@remote"@you.example>`, want: Path{Local: `"user@remote"`, Domain: "you.example", Quoted: true}},
		{name: "quoted escaped quote", in: `<"a\"b"@example.com>`, want: Path{Local: `"a\"b"`, Domain: "example.com", Quoted: true}},
		{name: "quoted empty", in: `<""@example.com>`, want: Path{Local: `""`, Domain: "example.com", Quoted: true}},
		{name: "quoted angle", in: `<"a>b"@example.com>`, want: Path{Local: `"a>b"`, Domain: "example.com", Quoted: true}},
		{name: "percent hack", in: "<user%remote@you.example>", want: Path{Local: "user%remote", Domain: "you.example"}},
		{name: "bang path", in: "<remote!user@you.example>", want: Path{Local: "remote!user", Domain: "you.example"}},
		{name: "ipv4 literal", in: "<user@[1.2.3.4]>", want: Path{Local: "user", Domain: "[1.2.3.4]", Literal: true}},
		{name: "ipv6 literal", in: "<user@[IPv6:::1]>", want: Path{Local: "user", Domain: "[IPv6:::1]", Literal: true}},
		{name: "ipv6 literal lower tag", in: "<user@[ipv6:2001:db8::1]>", want: Path{Local: "user", Domain: "[ipv6:2001:db8::1]", Literal: true}},
		{name: "utf8 local and domain", in: "<用户@例子.广告>", want: Path{Local: "用户", Domain: "例子.广告", UTF8: true}},
		{name: "utf8 quoted", in: `<"ユーザー 名"@example.jp>`, want: Path{Local: `"ユーザー 名"`, Domain: "example.jp", Quoted: true, UTF8: true}},
		{name: "lenient brackets", in: "user@example.com", opts: Options{AllowMissingBrackets: true}, want: Path{Local: "user", Domain: "example.com"}},
		{name: "unqualified allowed", in: "<remote!user>", opts: Options{AllowUnqualified: true}, want: Path{Local: "remote!user"}},
		{name: "loose dots allowed", in: "<a..b.@docomo.ne.jp>", opts: Options{AllowLooseDots: true}, want: Path{Local: "a..b.", Domain: "docomo.ne.jp"}},
		{name: "max local", in: "<" + strings.Repeat("a", 64) + "@example.com>", want: Path{Local: strings.Repeat("a", 64), Domain: "example.com"}},

		{name: "source route", in: "<@you.example:user@remote.example>", wantErr: ErrSourceRoute},
		{name: "source route list", in: "<@a,@b:user@remote.example>", wantErr: ErrSourceRoute},
		{name: "two at signs", in: "<user@remote@you.example>", wantErr: ErrMultipleAt},
		{name: "quoted then two at", in: `<"a"@b@c>`, wantErr: ErrMultipleAt},
		{name: "bang unqualified", in: "<remote!user>", wantErr: ErrUnqualified},
		{name: "unqualified", in: "<user>", wantErr: ErrUnqualified},
		{name: "no brackets", in: "user@example.com", wantErr: ErrMissingBrackets},
		{name: "no closing bracket", in: "<user@example.com", wantErr: ErrSyntax},
		{name: "no opening bracket lenient", in: "user@example.com>", opts: Options{AllowMissingBrackets: true}, wantErr: ErrSyntax},
		{name: "empty lenient", in: "", opts: Options{AllowMissingBrackets: true}, wantErr: ErrSyntax},
		{name: "nul", in: "<us\x00er@example.com>", wantErr: ErrControlChar},
		{name: "tab", in: "<user@exa\tmple.com>", wantErr: ErrControlChar},
		{name: "del", in: "<user\x7f@example.com>", wantErr: ErrControlChar},
		{name: "control in quotes", in: "<\"a\x01b\"@example.com>", wantErr: ErrControlChar},
		{name: "bad utf8", in: "<us\xffer@example.com>", wantErr: ErrInvalidUTF8},
		{name: "space unquoted", in: "<john doe@example.com>", wantErr: ErrSyntax},
		{name: "leading dot", in: "<.user@example.com>", wantErr: ErrSyntax},
		{name: "double dot", in: "<a..b@docomo.ne.jp>", wantErr: ErrSyntax},
		{name: "trailing dot", in: "<a.@ezweb.ne.jp>", wantErr: ErrSyntax},
		{name: "empty local", in: "<@example.com>", wantErr: ErrSyntax},
		{name: "unterminated quote", in: `<"abc@example.com>`, wantErr: ErrSyntax},
		{name: "text after quote", in: `<"a"b@example.com>`, wantErr: ErrSyntax},
		{name: "quote mid atom", in: `<a"b"@example.com>`, wantErr: ErrSyntax},
		{name: "comma", in: "<a,b@example.com>", wantErr: ErrSyntax},
		{name: "empty domain", in: "<user@>", wantErr: ErrBadDomain},
		{name: "domain empty label", in: "<user@example..com>", wantErr: ErrBadDomain},
		{name: "domain trailing dot", in: "<user@example.com.>", wantErr: ErrBadDomain},
		{name: "domain hyphen start", in: "<user@-example.com>", wantErr: ErrBadDomain},
		{name: "domain underscore", in: "<user@ex_ample.com>", wantErr: ErrBadDomain},
		{name: "domain long label", in: "<user@" + strings.Repeat("a", 64) + ".com>", wantErr: ErrBadDomain},
		{name: "literal bad ipv4", in: "<user@[1.2.3.256]>", wantErr: ErrBadLiteral},
		{name: "literal v6 without tag", in: "<user@[::1]>", wantErr: ErrBadLiteral},
		{name: "literal v4 with v6 tag", in: "<user@[IPv6:1.2.3.4]>", wantErr: ErrBadLiteral},
		{name: "literal unterminated", in: "<user@[1.2.3.4>", wantErr: ErrBadLiteral},
		{name: "literal general", in: "<user@[x400:foo]>", wantErr: ErrBadLiteral},
		{name: "local too long", in: "<" + strings.Repeat("a", 65) + "@example.com>", wantErr: ErrLocalTooLong},
		{name: "domain too long", in: "<a@" + strings.Repeat("abcdefghi.", 25) + "abcdefg>", wantErr: ErrDomainTooLong},
		{name: "path too long", in: "<" + strings.Repeat("a", 64) + "@" + strings.Repeat("abcdefghi.", 19) + "com>", wantErr: ErrPathTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.ParsePath(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParsePath(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath(%q) unexpected error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParsePath(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestOpenRelayForms walks the classic relay-test forms through the parser
// and the routing check: each must either be rejected or be flagged.
func TestOpenRelayForms(t *testing.T) {
	tests := []struct {
		in          string
		wantErr     error
		wantRouting bool
	}{
		{in: "<user%remote@you.example>", wantRouting: true},
		{in: `<"user@remote"@you.example>`, wantRouting: true},
		{in: `<"user%remote"@you.example>`, wantRouting: true},
		{in: "<user@remote@you.example>", wantErr: ErrMultipleAt},
		{in: "<@you.example:user@remote.example>", wantErr: ErrSourceRoute},
		{in: "<remote!user>", wantErr: ErrUnqualified},
		{in: "<remote!user@you.example>", wantRouting: true},
		{in: "<user@[1.2.3.4]>"},
		{in: "<user@[IPv6:::1]>"},
		{in: "<user@you.example>"},
		{in: `<"plain"@you.example>`},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParsePath(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q) unexpected error: %v", tt.in, err)
			continue
		}
		if got := HasRoutingChars(p.Local); got != tt.wantRouting {
			t.Errorf("HasRoutingChars(%q) = %v, want %v", p.Local, got, tt.wantRouting)
		}
	}
}

func TestParseMailArg(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantPath   string
		wantNull   bool
		wantParams Params
		wantErr    error
	}{
		{name: "params", in: "FROM:<a@b.example> SIZE=100 BODY=8BITMIME", wantPath: "a@b.example", wantParams: Params{"SIZE": "100", "BODY": "8BITMIME"}},
		{name: "lower keyword", in: "from:<a@b.example> smtputf8", wantPath: "a@b.example", wantParams: Params{"SMTPUTF8": ""}},
		{name: "space after colon", in: "FROM: <a@b.example>", wantPath: "a@b.example", wantParams: Params{}},
		{name: "null", in: "FROM:<> RET=HDRS", wantNull: true, wantParams: Params{"RET": "HDRS"}},
		{name: "quoted with space and gt", in: `FROM:<"a b>c"@b.example> SIZE=1`, wantPath: `"a b>c"@b.example`, wantParams: Params{"SIZE": "1"}},
		{name: "quoted escaped quote", in: `FROM:<"a\" b"@b.example>`, wantPath: `"a\" b"@b.example`, wantParams: Params{}},
		{name: "envid xtext", in: "FROM:<a@b.example> ENVID=QQ314159+2B", wantPath: "a@b.example", wantParams: Params{"ENVID": "QQ314159+2B"}},
		{name: "wrong verb", in: "TO:<a@b.example>", wantErr: ErrSyntax},
		{name: "short", in: "FR", wantErr: ErrSyntax},
		{name: "no space before param", in: "FROM:<a@b.example>SIZE=1", wantErr: ErrSyntax},
		{name: "unterminated", in: "FROM:<a@b.example SIZE=1", wantErr: ErrSyntax},
		{name: "dup param", in: "FROM:<a@b.example> SIZE=1 size=2", wantErr: ErrBadParameter},
		{name: "empty value", in: "FROM:<a@b.example> SIZE=", wantErr: ErrBadParameter},
		{name: "bad keyword", in: "FROM:<a@b.example> -X=1", wantErr: ErrBadParameter},
		{name: "equals in value", in: "FROM:<a@b.example> X=a=b", wantErr: ErrBadParameter},
		{name: "tab separator", in: "FROM:<a@b.example>\tSIZE=1", wantErr: ErrControlChar},
		{name: "missing brackets", in: "FROM:a@b.example", wantErr: ErrMissingBrackets},
		{name: "source route", in: "FROM:<@x.example:a@b.example>", wantErr: ErrSourceRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, params, err := ParseMailArg(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseMailArg(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMailArg(%q) unexpected error: %v", tt.in, err)
			}
			if p.String() != tt.wantPath || p.Null != tt.wantNull {
				t.Errorf("path = %q (null %v), want %q (null %v)", p.String(), p.Null, tt.wantPath, tt.wantNull)
			}
			if len(params) != len(tt.wantParams) {
				t.Fatalf("params = %v, want %v", params, tt.wantParams)
			}
			for k, v := range tt.wantParams {
				if got, ok := params[k]; !ok || got != v {
					t.Errorf("params[%q] = %q, %v; want %q", k, got, ok, v)
				}
			}
		})
	}
}

func TestParseRcptArg(t *testing.T) {
	p, params, err := ParseRcptArg("TO:<Postmaster> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.example")
	if err != nil {
		t.Fatal(err)
	}
	if p.Local != "Postmaster" || p.Domain != "" || params["NOTIFY"] != "SUCCESS,FAILURE" || params["ORCPT"] != "rfc822;a@b.example" {
		t.Fatalf("got %+v %v", p, params)
	}
	lenient := Options{AllowMissingBrackets: true}
	p, params, err = lenient.ParseRcptArg("TO:user@example.com NOTIFY=NEVER")
	if err != nil || p.String() != "user@example.com" || params["NOTIFY"] != "NEVER" {
		t.Fatalf("lenient: got %+v %v %v", p, params, err)
	}
	if _, _, err := ParseRcptArg("FROM:<a@b.example>"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("RCPT with FROM: error = %v, want ErrSyntax", err)
	}
}
