package check

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/config"
)

func TestTableSpecs(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"hash:/etc/postfix/transport", "regexp:/etc/postfix/re"}, []string{"hash:/etc/postfix/transport", "regexp:/etc/postfix/re"}},
		{[]string{"permit_mynetworks", "check_recipient_access", "hash:/etc/postfix/access", "reject_unauth_destination"}, []string{"hash:/etc/postfix/access"}},
		{[]string{"check_policy_service", "inet:127.0.0.1:10023", "unix:private/policy"}, nil},
		{[]string{"proxy:unix:passwd.byname", "unix:passwd.byname", "$alias_maps"}, nil},
		{[]string{"proxy:hash:/etc/postfix/relay_recipients", "ldap:/etc/postfix/ldap.cf"}, []string{"proxy:hash:/etc/postfix/relay_recipients", "ldap:/etc/postfix/ldap.cf"}},
		{[]string{"smtp:[192.0.2.1]:25", "hash:", ":x", "[::1]:25"}, nil},
	}
	for _, tt := range tests {
		if got := TableSpecs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("TableSpecs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// loadConfig writes main.cf (with every state directory under dir) and
// master.cf and loads them.
func loadConfig(t *testing.T, dir, mainExtra, master string) *config.Config {
	t.Helper()
	main := "myhostname = mx.yubin.test\n" +
		"queue_directory = " + dir + "/queue\n" +
		"data_directory = " + dir + "/data\n" +
		"maillog_file = " + dir + "/log/maillog\n" +
		"alias_maps = hash:" + dir + "/aliases\n" +
		"alias_database = hash:" + dir + "/aliases\n" +
		"yubin_metrics_address =\n" + mainExtra
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aliases"), []byte("postmaster: root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func messages(r Report) string {
	var lines []string
	for _, f := range r.Findings {
		lines = append(lines, f.String())
	}
	return strings.Join(lines, "\n")
}

func TestCleanConfiguration(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "transport"), []byte("example.com smtp:[192.0.2.1]\n"), 0o644)
	cfg := loadConfig(t, dir, "transport_maps = hash:"+dir+"/transport\n", freeAddr(t)+" inet n - n - - smtpd\n")
	r := Run(cfg, Options{UID: -1})
	if len(r.Findings) != 0 {
		t.Fatalf("findings on a clean configuration:\n%s", messages(r))
	}
	// queue, data (and its raft directory and control socket below), log.
	if r.Directories != 4 || r.Tables != 2 || r.Listeners != 1 {
		t.Errorf("checked %d directories, %d tables, %d listeners; want 4, 2, 1", r.Directories, r.Tables, r.Listeners)
	}
}

func TestFindings(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string) (mainExtra, master string)
		severity  Severity
		contains  string
		runningOK bool
	}{
		{"missing table", func(t *testing.T, dir string) (string, string) {
			return "smtpd_recipient_restrictions = check_recipient_access hash:" + dir + "/access, reject_unauth_destination\n", ""
		}, Error, "smtpd_recipient_restrictions hash:", false},
		{"broken regexp table", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "checks"), []byte("/unclosed( REJECT\n"), 0o644)
			return "transport_maps = regexp:" + dir + "/checks\n", ""
		}, Error, "transport_maps regexp:", false},
		{"world-writable queue directory", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "queue"), 0o700)
			os.Chmod(filepath.Join(dir, "queue"), 0o777)
			return "", ""
		}, Error, "is world-writable (mode 0777)", false},
		{"group-writable data directory", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "data"), 0o700)
			os.Chmod(filepath.Join(dir, "data"), 0o770)
			return "", ""
		}, Warning, "is group-writable (mode 0770)", false},
		{"queue directory is a file", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "queue"), nil, 0o600)
			return "", ""
		}, Error, "is not a directory", false},
		{"relative directory", func(t *testing.T, dir string) (string, string) {
			return "yubin_raft_directory = raft\n", ""
		}, Error, "yubin_raft_directory raft: must be an absolute path", false},
		{"port in use", func(t *testing.T, dir string) (string, string) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return "", l.Addr().String() + " inet n - n - - smtpd\n"
		}, Error, "address already in use by another program", false},
		{"port held by the running node", func(t *testing.T, dir string) (string, string) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return "yubin_metrics_address = " + l.Addr().String() + "\n", ""
		}, Error, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mainExtra, master := tt.setup(t, dir)
			cfg := loadConfig(t, dir, mainExtra, master)
			r := Run(cfg, Options{UID: -1, NodeRunning: func() bool { return tt.runningOK }})
			if tt.contains == "" {
				if len(r.Findings) != 0 {
					t.Fatalf("unexpected findings:\n%s", messages(r))
				}
				return
			}
			for _, f := range r.Findings {
				if f.Severity == tt.severity && strings.Contains(f.String(), tt.contains) {
					return
				}
			}
			t.Fatalf("no %v containing %q in:\n%s", tt.severity, tt.contains, messages(r))
		})
	}
}

func TestDirectoryThatCannotBeCreated(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere")
	}
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o500); err != nil {
		t.Fatal(err)
	}
	r := Report{}
	checkCreatable(&r, "queue_directory", filepath.Join(locked, "a", "b"))
	if r.Errors() != 1 || !strings.Contains(messages(r), locked+" is not writable") {
		t.Fatalf("got:\n%s", messages(r))
	}
}
