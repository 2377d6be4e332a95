package config

import (
	"reflect"
	"strings"
	"testing"
)

const seedDocomoLine = "docomo-smtp unix - - n - 1 smtp -o smtp_destination_concurrency_limit=1 -o smtp_destination_recipient_limit=1\n"

func TestParseMasterCF(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Service
	}{
		{"seed docomo-smtp line", seedDocomoLine, []Service{{
			Name: "docomo-smtp", Type: "unix", Private: true, Unpriv: true, Chroot: false,
			Wakeup: "0", MaxProc: 1, Command: "smtp",
			Overrides: map[string]string{"smtp_destination_concurrency_limit": "1", "smtp_destination_recipient_limit": "1"},
			Line:      1,
		}}},
		{"stock smtpd with defaults", "# comment\nsmtp      inet  n       -       y       -       -       smtpd\n", []Service{{
			Name: "smtp", Type: "inet", Private: false, Unpriv: true, Chroot: true,
			Wakeup: "0", MaxProc: 100, Command: "smtpd", Line: 2,
		}}},
		{"continuation lines with -o", "submission inet n - n - - smtpd\n" +
			"  -o syslog_name=postfix/submission\n" +
			"  -o smtpd_tls_security_level=encrypt\n" +
			"# comment between\n" +
			"  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n" +
			"  -v\n", []Service{{
			Name: "submission", Type: "inet", Unpriv: true, Wakeup: "0", MaxProc: 100, Command: "smtpd",
			Args: []string{"-v"},
			Overrides: map[string]string{
				"syslog_name":                  "postfix/submission",
				"smtpd_tls_security_level":     "encrypt",
				"smtpd_recipient_restrictions": "permit_sasl_authenticated,reject",
			},
			Line: 1,
		}}},
		{"braced -o and -oname=value", "smtps inet n - n - 10 smtpd -o { smtpd_client_restrictions = permit_mynetworks, reject } -osmtpd_tls_wrappermode=yes\n", []Service{{
			Name: "smtps", Type: "inet", Unpriv: true, Wakeup: "0", MaxProc: 10, Command: "smtpd",
			Overrides: map[string]string{"smtpd_client_restrictions": "permit_mynetworks, reject", "smtpd_tls_wrappermode": "yes"},
			Line:      1,
		}}},
		{"host:port and wakeup with ?", "127.0.0.1:10025 inet n - n - 0 smtpd\nqmgr unix n - n 300 1 qmgr\ntlsmgr unix - - y 1000? 1 tlsmgr\n", []Service{
			{Name: "127.0.0.1:10025", Type: "inet", Unpriv: true, Wakeup: "0", MaxProc: 0, Command: "smtpd", Line: 1},
			{Name: "qmgr", Type: "unix", Unpriv: true, Wakeup: "300", MaxProc: 1, Command: "qmgr", Line: 2},
			{Name: "tlsmgr", Type: "unix", Private: true, Unpriv: true, Chroot: true, Wakeup: "1000?", MaxProc: 1, Command: "tlsmgr", Line: 3},
		}},
		{"pipe arguments with braces and macros", "maildrop unix - n n - - pipe\n  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n", []Service{{
			Name: "maildrop", Type: "unix", Private: true, Wakeup: "0", MaxProc: 100, Command: "pipe",
			Args: []string{"flags=DRXhu", "user=vmail", "argv=/usr/bin/maildrop", "-d", "${recipient}"},
			Line: 1,
		}}},
		{"all types and unknown command", "a unix-dgram n - n - 1 postlogd\nb fifo n - n 60 1 pickup\nc pass - - n - - whatever\n[::1]:2525 inet n - n - - smtpd\n", []Service{
			{Name: "a", Type: "unix-dgram", Unpriv: true, Wakeup: "0", MaxProc: 1, Command: "postlogd", Line: 1},
			{Name: "b", Type: "fifo", Unpriv: true, Wakeup: "60", MaxProc: 1, Command: "pickup", Line: 2},
			{Name: "c", Type: "pass", Private: true, Unpriv: true, Wakeup: "0", MaxProc: 100, Command: "whatever", Line: 3},
			{Name: "[::1]:2525", Type: "inet", Unpriv: true, Wakeup: "0", MaxProc: 100, Command: "smtpd", Line: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ParseMasterCF(strings.NewReader(tt.input), "master.cf", 100)
			if err != nil {
				t.Fatalf("ParseMasterCF: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("services =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseMasterCFDuplicate(t *testing.T) {
	in := "smtp inet n - n - - smtpd\nsmtp unix - - n - - smtp\nsmtp inet n - n - 5 smtpd\n"
	got, warns, err := ParseMasterCF(strings.NewReader(in), "master.cf", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].MaxProc != 5 || got[0].Line != 3 {
		t.Errorf("services = %+v, want the inet entry replaced by line 3", got)
	}
	if len(warns) != 1 || warns[0].String() != "master.cf:3: duplicate service smtp/inet replaces the entry at line 1" {
		t.Errorf("warnings = %v", warns)
	}
}

func TestParseMasterCFErrors(t *testing.T) {
	tests := []struct{ input, want string }{
		{"smtp inet n - n - -\n", `master.cf:1: missing "command" field`},
		{"# c\nsmtp\n", `master.cf:2: missing "type" field`},
		{"smtp tcp n - n - - smtpd\n", `master.cf:1: bad service type "tcp"`},
		{"smtp inet x - n - - smtpd\n", `master.cf:1: field "private": bad value "x"`},
		{"smtp inet n yes n - - smtpd\n", `master.cf:1: field "unpriv": bad value "yes"`},
		{"smtp inet n - 1 - - smtpd\n", `master.cf:1: field "chroot": bad value "1"`},
		{"smtp inet n - n soon - smtpd\n", `master.cf:1: field "wakeup": bad value "soon"`},
		{"smtp inet n - n - many smtpd\n", `master.cf:1: field "maxproc": bad value "many"`},
		{"smtp inet n - n - -1 smtpd\n", `master.cf:1: field "maxproc": bad value "-1"`},
		{"smtp inet n - n - - -\n", `master.cf:1: field "command" has no default value`},
		{"smtp inet - - n - - smtpd\n", `master.cf:1: inet service "smtp" cannot be private`},
		{"a unix - - n - - smtp\n\nb unix - - n - - smtp -o\n", "master.cf:3: -o without name=value"},
		{"b unix - - n - - smtp\n  -o novalue\n", `master.cf:1: -o "novalue": want name=value`},
		{"b unix - - n - - smtp -o =x\n", `master.cf:1: -o "=x": want name=value`},
		{"b unix - - n - - smtp -o {a = b\n", "master.cf:1: missing '}'"},
		{"b unix - - n - - smtp -o {a=b}c\n", "master.cf:1: text after '}'"},
		{"1.2.3.4:99999 inet n - n - - smtpd\n", `master.cf:1: bad inet service "1.2.3.4:99999"`},
		{"::1:25 inet n - n - - smtpd\n", `master.cf:1: bad inet service "::1:25"`},
		{"[nothost]:25 inet n - n - - smtpd\n", `master.cf:1: bad inet service "[nothost]:25"`},
		{"[::1] inet n - n - - smtpd\n", `master.cf:1: bad inet service "[::1]"`},
		{":25 inet n - n - - smtpd\n", `master.cf:1: bad inet service ":25"`},
		{"0 inet n - n - - smtpd\n", `master.cf:1: bad inet service "0": port 0`},
		{"no-such-service-name-xyz inet n - n - - smtpd\n", `master.cf:1: bad inet service "no-such-service-name-xyz": unknown service name`},
	}
	for _, tt := range tests {
		_, _, err := ParseMasterCF(strings.NewReader(tt.input), "master.cf", 100)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseMasterCF(%q) error = %v, want prefix %s", tt.input, err, tt.want)
		}
	}
}

func TestDefaultMasterCFParses(t *testing.T) {
	services, warns, err := ParseMasterCF(strings.NewReader(DefaultMasterCF), "built-in", 100)
	if err != nil || len(warns) > 0 {
		t.Fatalf("DefaultMasterCF: %v %v", err, warns)
	}
	var names []string
	for _, s := range services {
		names = append(names, s.Name+"/"+s.Type+"/"+s.Command)
	}
	want := []string{"smtp/inet/smtpd", "smtp/unix/smtp", "relay/unix/smtp", "lmtp/unix/lmtp", "local/unix/local",
		"virtual/unix/virtual", "error/unix/error", "retry/unix/error", "discard/unix/discard"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("default services = %q, want %q", names, want)
	}
}
