package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, warns := mustLoad(t, noFile, noFile)
	if len(warns) != 0 {
		t.Errorf("warnings: %s", warningsText(warns))
	}
	tests := map[string]string{
		"myhostname":                           "mx1.example.com",
		"mydomain":                             "example.com",
		"myorigin":                             "mx1.example.com",
		"mydestination":                        "mx1.example.com, localhost.example.com, localhost",
		"config_directory":                     c.Directory(),
		"mynetworks_style":                     "host",
		"mynetworks":                           "127.0.0.1/32 192.0.2.10/32 [::1]/128 [2001:db8::10]/128",
		"relay_domains":                        "",
		"smtpd_banner":                         "mx1.example.com ESMTP yubin",
		"local_transport":                      "local:mx1.example.com",
		"smtpd_timeout":                        "300s",
		"append_dot_mydomain":                  "no",
		"smtp_destination_concurrency_limit":   "20",
		"yubin_node_name":                      "mx1.example.com",
		"yubin_control_socket":                 "/var/lib/yubin/control.sock",
		"yubin_raft_directory":                 "/var/lib/yubin/raft",
		"lmtp_initial_destination_concurrency": "5",
	}
	for name, want := range tests {
		if got := c.Get(name); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	if raw, ok := c.Raw("mydestination"); !ok || raw != "$myhostname, localhost.$mydomain, localhost" {
		t.Errorf("Raw(mydestination) = %q, %v", raw, ok)
	}
	if _, ok := c.Raw("no_such_parameter"); ok {
		t.Error("Raw(no_such_parameter) reported defined")
	}
	if c.IsSet("myhostname") {
		t.Error("IsSet(myhostname) without main.cf")
	}
}

func TestLoadHostnameDerivation(t *testing.T) {
	tests := []struct {
		hostname, mainCF, wantHost, wantDomain string
	}{
		{"mx1.example.com", "", "mx1.example.com", "example.com"},
		{"vm", "", "vm.localdomain", "localdomain"},
		{"vm.", "", "vm.localdomain", "localdomain"},
		{"vm", "mydomain = example.org\n", "vm.example.org", "example.org"},
		{"vm", "myhostname = mail\n", "mail", "localdomain"},
		{"vm", "myhostname = a.b.example\n", "a.b.example", "b.example"},
	}
	for _, tt := range tests {
		c, _, err := load(writeDir(t, tt.mainCF, noFile), testEnv(tt.hostname))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Get("myhostname"); got != tt.wantHost {
			t.Errorf("hostname %q, main.cf %q: myhostname = %q, want %q", tt.hostname, tt.mainCF, got, tt.wantHost)
		}
		if got := c.Get("mydomain"); got != tt.wantDomain {
			t.Errorf("hostname %q, main.cf %q: mydomain = %q, want %q", tt.hostname, tt.mainCF, got, tt.wantDomain)
		}
	}
}

func TestLoadMainCF(t *testing.T) {
	c, warns := mustLoad(t, `# seed 000 style
myhostname = mail.example.jp
mydomain = example.jp
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain
mynetworks = 192.168.0.0/24, 127.0.0.0/8
relayhost = [smtp.isp.example]:587
compatibility_level = 3.6
message_size_limit = 20480000
maximal_queue_lifetime = 2
delay_warning_time = 4h
smtpd_helo_required = YES
smtpd_timeout = ${stress?{10}:{60}}s
smtpd_restriction_classes = permissive
permissive = permit
mua_restrictions = permit_sasl_authenticated, reject
smtpd_client_restrictions = $mua_restrictions
foo = bar
readme_directory = no
myorigin = $myhostname
undefined_ref_holder = $nowhere
`, noFile)
	checks := map[string]string{
		"myorigin":                  "mail.example.jp",
		"mydestination":             "mail.example.jp, localhost.example.jp, localhost, example.jp",
		"relay_domains":             "",
		"mynetworks_style":          "host",
		"append_dot_mydomain":       "no",
		"smtpd_client_restrictions": "permit_sasl_authenticated, reject",
	}
	for name, want := range checks {
		if got := c.Get(name); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	if n, err := c.Size("message_size_limit"); err != nil || n != 20480000 {
		t.Errorf("Size(message_size_limit) = %d, %v", n, err)
	}
	if d, err := c.Duration("maximal_queue_lifetime"); err != nil || d != 48*time.Hour {
		t.Errorf("Duration(maximal_queue_lifetime) = %v, %v (bare number is days)", d, err)
	}
	if d, err := c.Duration("delay_warning_time"); err != nil || d != 4*time.Hour {
		t.Errorf("Duration(delay_warning_time) = %v, %v", d, err)
	}
	if d, err := c.Duration("smtpd_timeout"); err != nil || d != time.Minute {
		t.Errorf("Duration(smtpd_timeout) = %v, %v", d, err)
	}
	if b, err := c.Bool("smtpd_helo_required"); err != nil || !b {
		t.Errorf("Bool(smtpd_helo_required) = %v, %v", b, err)
	}
	if n, err := c.Int("smtpd_recipient_limit"); err != nil || n != 1000 {
		t.Errorf("Int(smtpd_recipient_limit) = %d, %v", n, err)
	}
	if _, err := c.Int("no_such_parameter"); err == nil {
		t.Error("Int(no_such_parameter) succeeded")
	}
	if _, err := c.Bool("myhostname"); err == nil {
		t.Error("Bool(myhostname) succeeded")
	}
	if got, want := c.List("mynetworks"), []string{"192.168.0.0/24", "127.0.0.0/8"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List(mynetworks) = %q, want %q", got, want)
	}
	got := warningsText(warns)
	for _, want := range []string{
		"main.cf:20: overriding earlier entry: myorigin=$mydomain (line 4)",
		"main.cf:18: unused parameter: foo=bar",
		"main.cf:19: parameter readme_directory=no is not implemented by yubin",
		"main.cf:21: undefined parameter: nowhere",
		"main.cf:21: unused parameter: undefined_ref_holder=$nowhere",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	for _, notWant := range []string{"permissive", "mua_restrictions", "stress"} {
		if strings.Contains(got, notWant) {
			t.Errorf("warnings mention %q, which is in use or built in:\n%s", notWant, got)
		}
	}
}

func TestLoadInvalidValues(t *testing.T) {
	tests := []struct{ mainCF, masterCF, want string }{
		{"a = 1\nsmtpd_helo_required = maybe\n", noFile, `main.cf:2: invalid value "maybe" for parameter smtpd_helo_required: want yes or no`},
		{"smtpd_timeout = 5 minutes\n", noFile, `main.cf:1: invalid value "5 minutes" for parameter smtpd_timeout`},
		{"message_size_limit = 10M\n", noFile, `main.cf:1: invalid value "10M" for parameter message_size_limit`},
		{"smtpd_recipient_limit = 0\n", noFile, `main.cf:1: invalid value "0" for parameter smtpd_recipient_limit: must be at least 1`},
		{"x = abc\ndefault_destination_concurrency_limit = $x\n", noFile, `main.cf:2: invalid value "abc" for parameter default_destination_concurrency_limit`},
		{"mynetworks_style = everything\n", noFile, `main.cf:1: invalid value "everything" for parameter mynetworks_style`},
		{"inet_protocols = ipv5\n", noFile, `main.cf:1: invalid value "ipv5" for parameter inet_protocols`},
		{"notify_classes = resource, nonsense\n", noFile, `main.cf:1: invalid value "resource, nonsense" for parameter notify_classes`},
		{"smtpd_tls_security_level = must\n", noFile, `main.cf:1: invalid value "must" for parameter smtpd_tls_security_level`},
		{"compatibility_level = new\n", noFile, `main.cf:1: invalid value "new" for parameter compatibility_level`},
		{"yubin_cluster_peers = a=10.0.0.1:7000, b\n", noFile, `main.cf:1: invalid value "a=10.0.0.1:7000, b" for parameter yubin_cluster_peers`},
		{"yubin_cluster_address = nowhere\n", noFile, `main.cf:1: invalid value "nowhere" for parameter yubin_cluster_address`},
		{"inet_interfaces = all, 127.0.0.1\n", noFile, `main.cf:1: invalid value "all, 127.0.0.1" for parameter inet_interfaces`},
		{"mydestination = /nonexistent/yubin/file\n", noFile, `main.cf:1: invalid value "/nonexistent/yubin/file" for parameter mydestination: list file: open /nonexistent/yubin/file`},
		{"myorigin = $a\na = $b\nb = $myorigin\n", noFile, "main.cf:1: parameter myorigin: parameter expansion: loop: $myorigin -> $a -> $b -> $myorigin"},
		{"relayhost = ${myhostname\n", noFile, "main.cf:1: parameter relayhost: parameter expansion: truncated macro reference"},
		{"default_process_limit = none\n", noFile, `main.cf:1: invalid value "none" for parameter default_process_limit`},
		{"", "docomo-smtp unix - - n - 1 smtp -o smtp_destination_concurrency_limit=one\n",
			`master.cf:1: invalid value "one" for parameter smtp_destination_concurrency_limit in service docomo-smtp`},
		{"", "smtp inet n - n - - smtpd\n  -o smtpd_timeout=$smtpd_timeout\n",
			"master.cf:1: service smtp: parameter smtpd_timeout: parameter expansion: loop"},
		{"", "x unix - - n - - smtp -o docomo_destination_rate_delay=1s\ndocomo unix - - n - - smtp -o docomo_destination_rate_delay=fast\n",
			`master.cf:2: invalid value "fast" for parameter docomo_destination_rate_delay in service docomo`},
		{"", "smtp inet n - n - - smtpd -o mynetworks=/nonexistent/yubin/nets\n",
			`master.cf:1: invalid value "/nonexistent/yubin/nets" for parameter mynetworks in service smtp`},
		{"", "smtp inet - - n - - smtpd\n", "master.cf:1: inet service \"smtp\" cannot be private"},
	}
	for _, tt := range tests {
		err := loadErr(t, tt.mainCF, tt.masterCF)
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error = %v\nwant it to contain %s", err, tt.want)
		}
	}
}

func TestLoadFileList(t *testing.T) {
	dir := t.TempDir()
	domains := filepath.Join(dir, "relay_domains")
	if err := os.WriteFile(domains, []byte("# backup MX for\nexample.net\nexample.org, example.info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := mustLoad(t, "relay_domains = example.com, "+domains+", hash:/etc/yubin/relay\nmydestination = "+domains+"\nsmtpd_recipient_restrictions = "+domains+"\n", noFile)
	want := []string{"example.com", "example.net", "example.org", "example.info", "hash:/etc/yubin/relay"}
	if got := c.List("relay_domains"); !reflect.DeepEqual(got, want) {
		t.Errorf("List(relay_domains) = %q, want %q", got, want)
	}
	if got := c.List("mydestination"); !reflect.DeepEqual(got, want[1:4]) {
		t.Errorf("List(mydestination) = %q, want %q", got, want[1:4])
	}
	// Parameters not documented as accepting /file/name keep the element.
	if got := c.List("smtpd_recipient_restrictions"); !reflect.DeepEqual(got, []string{domains}) {
		t.Errorf("List(smtpd_recipient_restrictions) = %q", got)
	}
	if got := c.List("virtual_alias_domains"); got != nil {
		t.Errorf("List(virtual_alias_domains) = %q, want empty", got)
	}
}

const docomoMasterCF = `smtp      inet  n       -       n       -       -       smtpd
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/$service_name
  -o smtpd_recipient_restrictions=$mua_recipient_restrictions
  -o smtpd_tls_security_level=encrypt
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
local     unix  -       n       n       -       -       local
` + seedDocomoLine + `docomo-slow unix - - n - - smtp
  -o docomo-slow_destination_rate_delay=5s
  -o default_destination_recipient_limit=2
legacy unix - - n - - smtp -o legacy_destination_concurrency_limit=3
`

func TestTransportParam(t *testing.T) {
	c, warns := mustLoad(t, `default_destination_concurrency_limit = 10
docomo-smtp_destination_concurrency_limit = 5
docomo-smtp_destination_rate_delay = 1s
legacy_destination_concurrency_limit = 7
relay_destination_recipient_limit = 9
initial_destination_concurrency = 3
mua_recipient_restrictions = permit_sasl_authenticated, reject
`, docomoMasterCF)
	if len(warns) != 0 {
		t.Errorf("warnings: %s", warningsText(warns))
	}
	tests := []struct{ transport, suffix, want string }{
		// -o smtp_... on the docomo-smtp service wins over main.cf docomo-smtp_...
		{"docomo-smtp", "destination_concurrency_limit", "1"},
		{"docomo-smtp", "destination_recipient_limit", "1"},
		// main.cf TRANSPORT_... when there is no -o.
		{"docomo-smtp", "destination_rate_delay", "1s"},
		// default_... otherwise.
		{"docomo-smtp", "initial_destination_concurrency", "3"},
		{"docomo-smtp", "destination_concurrency_failed_cohort_limit", "1"},
		{"smtp", "destination_concurrency_limit", "10"},
		{"local", "destination_concurrency_limit", "2"},
		{"local", "destination_recipient_limit", "1"},
		{"relay", "destination_recipient_limit", "9"},
		// -o of the service's own name wins over main.cf.
		{"legacy", "destination_concurrency_limit", "3"},
		{"docomo-slow", "destination_rate_delay", "5s"},
		// an -o of default_... applies to that service only.
		{"docomo-slow", "destination_recipient_limit", "2"},
		{"smtp", "destination_recipient_limit", "50"},
		// transports not in master.cf fall back to the global default.
		{"nosuch", "destination_concurrency_limit", "10"},
		{"nosuch", "no_such_suffix", ""},
	}
	for _, tt := range tests {
		if got := c.TransportParam(tt.transport, tt.suffix); got != tt.want {
			t.Errorf("TransportParam(%s, %s) = %q, want %q", tt.transport, tt.suffix, got, tt.want)
		}
	}
	if n, err := c.TransportInt("docomo-smtp", "destination_concurrency_limit"); err != nil || n != 1 {
		t.Errorf("TransportInt = %d, %v", n, err)
	}
	if d, err := c.TransportDuration("docomo-slow", "destination_rate_delay"); err != nil || d != 5*time.Second {
		t.Errorf("TransportDuration = %v, %v", d, err)
	}
	if d, err := c.TransportDuration("smtp", "destination_rate_delay"); err != nil || d != 0 {
		t.Errorf("TransportDuration(smtp) = %v, %v", d, err)
	}
}

func TestServiceParam(t *testing.T) {
	c, _ := mustLoad(t, "mua_recipient_restrictions = permit_sasl_authenticated, reject\nsmtpd_banner = $myhostname ESMTP at $smtpd_tls_security_level\n", docomoMasterCF)
	tests := []struct{ service, name, want string }{
		{"submission", "smtpd_recipient_restrictions", "permit_sasl_authenticated, reject"},
		{"submission", "syslog_name", "postfix/submission"},
		{"submission", "smtpd_tls_security_level", "encrypt"},
		// values from main.cf see the service's overrides.
		{"submission", "smtpd_banner", "mx1.example.com ESMTP at encrypt"},
		{"smtp", "smtpd_recipient_restrictions", ""},
		{"smtp", "smtpd_banner", "mx1.example.com ESMTP at "},
		{"nosuch", "myhostname", "mx1.example.com"},
	}
	for _, tt := range tests {
		if got := c.ServiceParam(tt.service, tt.name); got != tt.want {
			t.Errorf("ServiceParam(%s, %s) = %q, want %q", tt.service, tt.name, got, tt.want)
		}
	}
	s, ok := c.Service("docomo-smtp")
	if !ok || s.MaxProc != 1 || s.Command != "smtp" || s.Overrides["smtp_destination_recipient_limit"] != "1" {
		t.Errorf("Service(docomo-smtp) = %+v, %v", s, ok)
	}
	if s, ok := c.Service("smtp"); !ok || s.Type != "unix" {
		t.Errorf("Service(smtp) = %+v, want the unix transport", s)
	}
	s.Overrides["smtp_destination_recipient_limit"] = "99"
	if again, _ := c.Service("docomo-smtp"); again.Overrides["smtp_destination_recipient_limit"] != "1" {
		t.Error("Service returned a shared Overrides map")
	}
	if got := len(c.Services()); got != 8 {
		t.Errorf("len(Services()) = %d, want 8", got)
	}
}

func TestMasterCFUnusedOverride(t *testing.T) {
	_, warns := mustLoad(t, "", "smtp inet n - n - - smtpd -o smtpd_bogus=1\n")
	if got := warningsText(warns); !strings.Contains(got, "master.cf:1: unused parameter: smtpd_bogus=1") {
		t.Errorf("warnings = %s", got)
	}
}

func TestInetListeners(t *testing.T) {
	master := "smtp inet n - n - - smtpd\n127.0.0.1:10025 inet n - n - - smtpd\n[::1]:2525 inet n - n - - smtpd\nsubmission inet n - n - - smtpd\nrelay unix - - n - - smtp\n"
	tests := []struct {
		mainCF string
		want   []string
	}{
		{"", []string{":25", "127.0.0.1:10025", "[::1]:2525", ":587"}},
		{"inet_protocols = ipv4\n", []string{"0.0.0.0:25", "127.0.0.1:10025", "[::1]:2525", "0.0.0.0:587"}},
		{"inet_protocols = ipv6\n", []string{"[::]:25", "127.0.0.1:10025", "[::1]:2525", "[::]:587"}},
		{"inet_interfaces = loopback-only\n", []string{"127.0.0.1:25", "[::1]:25", "127.0.0.1:10025", "[::1]:2525", "127.0.0.1:587", "[::1]:587"}},
		{"inet_interfaces = 192.0.2.10, [2001:db8::10]\n", []string{"192.0.2.10:25", "[2001:db8::10]:25", "127.0.0.1:10025", "[::1]:2525", "192.0.2.10:587", "[2001:db8::10]:587"}},
	}
	for _, tt := range tests {
		c, _ := mustLoad(t, tt.mainCF, master)
		var got []string
		for _, l := range c.InetListeners() {
			got = append(got, l.Address)
			if l.Service.Type != "inet" || l.Service.Command != "smtpd" {
				t.Errorf("listener %s has service %+v", l.Address, l.Service)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("main.cf %q: listeners = %q, want %q", tt.mainCF, got, tt.want)
		}
	}
}

func TestMynetworksStyles(t *testing.T) {
	tests := map[string]string{
		"mynetworks_style = host\n":                        "127.0.0.1/32 192.0.2.10/32 [::1]/128 [2001:db8::10]/128",
		"mynetworks_style = subnet\n":                      "127.0.0.0/8 192.0.2.0/24 [::1]/128 [2001:db8::]/64",
		"mynetworks_style = class\n":                       "127.0.0.0/8 192.0.2.0/24 [::1]/128 [2001:db8::]/64",
		"mynetworks_style = host\ninet_protocols = ipv4\n": "127.0.0.1/32 192.0.2.10/32",
		"compatibility_level = 2\n":                        "127.0.0.1/32 192.0.2.10/32 [::1]/128 [2001:db8::10]/128",
	}
	for mainCF, want := range tests {
		c, _ := mustLoad(t, mainCF, noFile)
		if got := c.Get("mynetworks"); got != want {
			t.Errorf("main.cf %q: mynetworks = %q, want %q", mainCF, got, want)
		}
	}
}

func TestLoadFromEnv(t *testing.T) {
	flagDir := writeDir(t, "myorigin = from-flag\n", noFile)
	envDir := writeDir(t, "myorigin = from-env\n", noFile)
	t.Setenv("MAIL_CONFIG", envDir)
	if got := Directory(flagDir); got != flagDir {
		t.Errorf("Directory(flag) = %q", got)
	}
	if got := Directory(""); got != envDir {
		t.Errorf("Directory(\"\") with MAIL_CONFIG = %q", got)
	}
	c, _, err := LoadFromEnv("")
	if err != nil || c.Get("myorigin") != "from-env" {
		t.Fatalf("LoadFromEnv: %v", err)
	}
	c, _, err = LoadFromEnv(flagDir)
	if err != nil || c.Get("myorigin") != "from-flag" {
		t.Fatalf("LoadFromEnv(flag): %v", err)
	}
	t.Setenv("MAIL_CONFIG", "")
	if got := Directory(""); got != DefaultDirectory {
		t.Errorf("Directory(\"\") = %q, want %s", got, DefaultDirectory)
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Load(file) error = %v", err)
	}
	dir := writeDir(t, noFile, noFile)
	if err := os.Mkdir(filepath.Join(dir, "main.cf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "main.cf") {
		t.Errorf("Load with unreadable main.cf: error = %v", err)
	}
}

func TestLoadRealSystem(t *testing.T) {
	c, _, err := Load(writeDir(t, noFile, noFile))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Get("myhostname"); !strings.Contains(h, ".") {
		t.Errorf("myhostname %q is not qualified", h)
	}
}

func TestRegistry(t *testing.T) {
	if len(registry) != len(paramTable) {
		t.Fatalf("paramTable has duplicate names: %d entries, %d names", len(paramTable), len(registry))
	}
	required := strings.Fields(`myhostname mydomain myorigin mydestination inet_interfaces inet_protocols mynetworks
	mynetworks_style relay_domains relayhost fallback_relay relay_transport default_transport
	local_transport virtual_transport transport_maps alias_maps alias_database virtual_alias_maps
	virtual_alias_domains virtual_mailbox_domains virtual_mailbox_maps virtual_mailbox_base
	virtual_uid_maps virtual_gid_maps virtual_minimum_uid local_recipient_maps relay_recipient_maps
	recipient_delimiter message_size_limit header_size_limit hopcount_limit smtpd_recipient_limit
	smtpd_banner mail_name smtpd_relay_restrictions smtpd_recipient_restrictions
	smtpd_sender_restrictions smtpd_client_restrictions smtpd_helo_restrictions
	smtpd_data_restrictions smtpd_end_of_data_restrictions smtpd_restriction_classes
	smtpd_helo_required smtpd_delay_reject smtpd_timeout smtpd_hard_error_limit smtpd_soft_error_limit
	smtpd_error_sleep_time smtpd_junk_command_limit smtpd_client_connection_count_limit
	smtpd_client_connection_rate_limit smtpd_client_message_rate_limit anvil_rate_time_unit
	smtpd_forbid_bare_newline smtpd_forbid_unauth_pipelining allow_untrusted_routing
	smtpd_tls_cert_file smtpd_tls_key_file smtpd_tls_security_level smtpd_tls_auth_only
	smtpd_sasl_auth_enable smtpd_sasl_type smtpd_sasl_path smtpd_sender_login_maps
	smtp_tls_security_level smtp_tls_CAfile smtp_connect_timeout smtp_helo_timeout smtp_mail_timeout
	smtp_rcpt_timeout smtp_data_init_timeout smtp_data_xfer_timeout smtp_data_done_timeout
	smtp_quit_timeout smtp_helo_name smtp_bind_address smtp_connection_cache_on_demand
	lmtp_connect_timeout lmtp_data_done_timeout home_mailbox mail_spool_directory mailbox_command
	queue_directory data_directory maillog_file syslog_name soft_bounce
	queue_run_delay minimal_backoff_time maximal_backoff_time maximal_queue_lifetime
	bounce_queue_lifetime delay_warning_time qmgr_message_active_limit
	default_destination_concurrency_limit initial_destination_concurrency
	default_destination_recipient_limit default_destination_rate_delay
	default_destination_concurrency_failed_cohort_limit default_process_limit
	smtp_destination_concurrency_limit smtp_destination_recipient_limit
	local_destination_concurrency_limit local_destination_recipient_limit
	relay_destination_concurrency_limit relay_destination_recipient_limit
	bounce_notice_recipient notify_classes 2bounce_notice_recipient empty_address_recipient
	double_bounce_sender owner_request_special sendmail_path newaliases_path mailq_path
	compatibility_level biff append_dot_mydomain append_at_myorigin swap_bangpath
	enable_long_queue_ids disable_vrfy_command strict_rfc821_envelopes dns_servers
	yubin_node_name yubin_cluster_address yubin_cluster_peers yubin_cluster_secret
	yubin_control_socket yubin_raft_directory yubin_metrics_address`)
	for _, name := range required {
		p, ok := LookupParam(name)
		if !ok {
			t.Errorf("required parameter %s is not in the registry", name)
			continue
		}
		if p.Meaning == "" {
			t.Errorf("parameter %s has no meaning", name)
		}
		if strings.HasPrefix(name, "yubin_") != p.Yubin && name != "dns_servers" {
			t.Errorf("parameter %s: Yubin = %v", name, p.Yubin)
		}
	}
	for _, p := range Params() {
		if p.Derived || p.Kind == KindString || p.Kind == KindList {
			continue
		}
		if strings.Contains(p.Default, "$") {
			continue // checked with expansion by TestLoadDefaults
		}
		if err := p.checkValue(p.Default); err != nil {
			t.Errorf("default of %s = %q is invalid: %v", p.Name, p.Default, err)
		}
	}
}

// TestRegistryMatchesPostfix compares defaults with the installed Postfix,
// except where yubin documents a difference.
func TestRegistryMatchesPostfix(t *testing.T) {
	postconf, err := exec.LookPath("postconf")
	if err != nil {
		t.Skip("postconf (Postfix) is not installed")
	}
	var names []string
	for _, p := range Params() {
		if !p.Derived && !p.Yubin && p.Note == "" {
			names = append(names, p.Name)
		}
	}
	out, err := exec.Command(postconf, append([]string{"-d"}, names...)...).Output()
	if err != nil {
		t.Fatalf("postconf -d: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, value, _ := strings.Cut(line, " =")
		p, ok := LookupParam(name)
		if !ok {
			continue
		}
		seen++
		if got := strings.TrimPrefix(value, " "); got != p.Default {
			t.Errorf("%s: registry default %q, Postfix %q", name, p.Default, got)
		}
	}
	if seen < len(names)*9/10 {
		t.Errorf("postconf printed %d of %d parameters", seen, len(names))
	}
}

func TestCheckNetwork(t *testing.T) {
	good := []string{"127.0.0.0/8", "192.0.2.1", "[::1]/128", "[::ffff:127.0.0.0]/104", "2001:db8::/32", "::1",
		"!10.0.0.0/8", "hash:/etc/yubin/network_table", "cidr:/etc/yubin/nets"}
	for _, e := range good {
		if err := checkNetwork(e); err != nil {
			t.Errorf("checkNetwork(%q): %v", e, err)
		}
	}
	bad := []string{"mail.example.com", "10.0.0.0/33", "[::1]/129", "10.0.0/8", "10.0.0.0/x", "[10.0.0.1", ""}
	for _, e := range bad {
		if err := checkNetwork(e); err == nil {
			t.Errorf("checkNetwork(%q) accepted", e)
		}
	}
}

func TestLoadBadNetworks(t *testing.T) {
	dir := t.TempDir()
	nets := filepath.Join(dir, "nets")
	if err := os.WriteFile(nets, []byte("10.0.0.0/8\nnot-a-network\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ mainCF, want string }{
		{"mynetworks = 127.0.0.0/8, 10.1.2.0/33\n", `main.cf:1: invalid value "127.0.0.0/8, 10.1.2.0/33" for parameter mynetworks: "10.1.2.0/33": bad prefix length`},
		{"mynetworks = 127.0.0.0/8 " + nets + "\n", `for parameter mynetworks: "not-a-network" is not an address or network`},
	} {
		if err := loadErr(t, tt.mainCF, noFile); !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error = %v, want %s", err, tt.want)
		}
	}
}

func TestServiceRuntimeNames(t *testing.T) {
	c, _ := mustLoad(t, "", "relay unix - - n - - /usr/lib/yubin/smtp -o syslog_name=yubin/$service_name\nlocal unix - n n - - local\n")
	if got := c.ServiceParam("relay", "syslog_name"); got != "yubin/relay" {
		t.Errorf("ServiceParam(relay, syslog_name) = %q", got)
	}
	if got := c.ServiceParam("relay", "process_name"); got != "smtp" {
		t.Errorf("ServiceParam(relay, process_name) = %q", got)
	}
	if got := c.ServiceParam("local", "service_name"); got != "local" {
		t.Errorf("ServiceParam(local, service_name) = %q", got)
	}
	if got := c.Get("service_name"); got != "" {
		t.Errorf("Get(service_name) outside a service = %q", got)
	}
}

func TestConfigConcurrentReads(t *testing.T) {
	c, _ := mustLoad(t, "mua = permit_sasl_authenticated, reject\n", docomoMasterCF)
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 50; j++ {
				_ = c.Get("mydestination")
				_ = c.List("mynetworks")
				_ = c.ServiceParam("submission", "smtpd_recipient_restrictions")
				_ = c.TransportParam("docomo-smtp", "destination_concurrency_limit")
				_ = c.InetListeners()
				_ = c.Services()
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
