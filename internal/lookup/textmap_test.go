package lookup

import (
	"strings"
	"testing"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		cases    []lookupCase
		warnings int
		wantErr  string
	}{
		{
			name: "basic and folding",
			in:   "Example.COM  smtp:[relay.example]\nuser@example.org\tOK\n",
			cases: []lookupCase{
				{"example.com", "smtp:[relay.example]", true},
				{"EXAMPLE.com", "smtp:[relay.example]", true},
				{"USER@EXAMPLE.ORG", "OK", true},
				{"other", "", false},
			},
		},
		{
			name:  "inner whitespace kept, continuation appended",
			in:    "key v a l  \n  more\n",
			cases: []lookupCase{{"key", "v a l  more", true}},
		},
		{
			name:     "duplicate keeps first",
			in:       "Foo bar\nfoo baz\n",
			cases:    []lookupCase{{"foo", "bar", true}},
			warnings: 1,
		},
		{name: "key without value", in: "a b\nonlykey\n", wantErr: "t:2: expected format: key whitespace value"},
		{name: "key with blank value", in: "a b\nonlykey   \t\n", wantErr: "t:2: expected format: key whitespace value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseTable("t", strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLookups(t, m, tt.cases)
			if len(m.Warnings()) != tt.warnings {
				t.Errorf("warnings = %q, want %d", m.Warnings(), tt.warnings)
			}
		})
	}
}
