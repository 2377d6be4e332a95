package lookup

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadSource(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []logicalLine
		wantErr string
	}{
		{name: "simple", in: "a b\nc d\n", want: []logicalLine{{"a b", 1}, {"c d", 2}}},
		{name: "comments and blanks", in: "# c\n\n   \n  # indented comment\na b\n", want: []logicalLine{{"a b", 5}}},
		{name: "continuation kept verbatim", in: "a b\n\t  c   d\n   \n  # x\n e\n", want: []logicalLine{{"a b\t  c   d e", 1}}},
		{name: "crlf and trailing space", in: "a b \r\nc d\r\n", want: []logicalLine{{"a b", 1}, {"c d", 2}}},
		{name: "hash mid line is text", in: "a b # not comment\n", want: []logicalLine{{"a b # not comment", 1}}},
		{name: "no final newline", in: "a b", want: []logicalLine{{"a b", 1}}},
		{name: "leading whitespace first", in: "  a b\n", wantErr: "t:1: logical line must not start with whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := readSource("t", strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(src.lines, tt.want) {
				t.Fatalf("lines = %+v, want %+v", src.lines, tt.want)
			}
		})
	}
}

func TestReadSourceLineTooLong(t *testing.T) {
	if _, err := readSource("big", strings.NewReader(strings.Repeat("x", maxLineBytes+10))); err == nil {
		t.Fatal("want error for an over-long line")
	}
}

func TestSplitBraceList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "a=b, c=d", want: []string{"a=b", "c=d"}},
		{in: " { a = b c } ,x=y", want: []string{"a = b c", "x=y"}},
		{in: "inline:{a=1, b=2}, static:x", want: []string{"inline:{a=1, b=2}", "static:x"}},
		{in: "a=b,,c=d", want: []string{"a=b", "c=d"}},
		{in: "a={b c}", want: []string{"a={b c}"}},
		{in: "", want: nil},
		{in: "{a=b}c", wantErr: true},
		{in: "{a=b", wantErr: true},
		{in: "a=b}", wantErr: true},
	}
	for _, tt := range tests {
		got, err := splitBraceList(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitBraceList(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitBraceList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
