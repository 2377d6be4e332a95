package lookup

import (
	"strings"
	"testing"
)

func TestCIDRLookups(t *testing.T) {
	in := `# clients
192.0.2.0/24      net
[198.51.100.7]    bracketed
[203.0.113.0]/25  bracketed-net
[203.0.113.128/25] bracketed-net2
2001:db8::/32     v6net
::1               loopback6
!10.0.0.0/8       not-ten
`
	tab, err := ParseCIDR("t", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, tab, []lookupCase{
		{"192.0.2.77", "net", true},
		{"198.51.100.7", "bracketed", true},
		{"203.0.113.5", "bracketed-net", true},
		{"203.0.113.200", "bracketed-net2", true},
		{"2001:DB8:0:0::5", "v6net", true},
		{"0::1", "loopback6", true},
		{"10.1.2.3", "", false},
		{"172.16.0.1", "not-ten", true},
		{"2001:db9::1", "", false}, // other family: the negated v4 rule does not apply
		{"::ffff:10.1.1.1", "", false},
		{"[192.0.2.1]", "", false}, // keys are not bracket-stripped
		{"01.2.3.4", "", false},
		{"mail.example.com", "", false},
	})
}

func TestCIDRIfEndif(t *testing.T) {
	tab, err := ParseCIDR("t", strings.NewReader("if 192.0.2.0/24\n192.0.2.4 four\nif !192.0.2.8\n192.0.2.0/28 low\nendif\nendif\n192.0.2.4 outer\n192.0.2.8 eight\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkLookups(t, tab, []lookupCase{{"192.0.2.4", "four", true}, {"192.0.2.5", "low", true}, {"192.0.2.8", "eight", true}, {"192.0.2.99", "", false}})
}

func TestCIDRErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1/24 x\n", `t:1: non-null host address bits in "192.0.2.1/24", perhaps you should use "192.0.2.0/24" instead`},
		{"192.0.2.0/24\n", `t:1: no lookup result after "192.0.2.0/24"`},
		{"ok 1\n", `t:1: bad address pattern "ok"`},
		{"192.0.2.0/33 x\n", `t:1: bad network/prefix pattern`},
		{"fe80::1%eth0 x\n", `t:1: bad address pattern`},
		{"[192.0.2.1 x\n", `t:1: bad address pattern`},
		{"if 192.0.2.0/24\n", "t:1: IF has no matching ENDIF"},
		{"endif\n", "t:1: ENDIF without matching IF"},
		{"if 192.0.2.0/24 extra\nendif\n", "t:1: extra text after IF statement"},
	}
	for _, tt := range tests {
		_, err := ParseCIDR("t", strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCIDR(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}
