package peertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartDovecotAuth runs a private Dovecot with only its auth service (a
// passwd-file passdb holding users, a static userdb) and returns its auth
// client socket. Dovecot is stopped when the test ends; the test is skipped
// when Dovecot is not installed.
func StartDovecotAuth(t testing.TB, users string) (socket string) {
	t.Helper()
	bin := dovecotBinary(t)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("dovecot: current user: %v", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatalf("dovecot: group %s: %v", u.Gid, err)
	}
	// Not t.TempDir: its path holds the test name, and unix socket paths are
	// limited to 108 bytes.
	dir, err := os.MkdirTemp("", "dc")
	if err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o600); err != nil {
		t.Fatalf("dovecot: write users: %v", err)
	}
	socket = filepath.Join(dir, "auth")
	// Dovecot runs as the current user, so it can read the 0600 files and
	// needs no dovecot system user.
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = %[2]s
default_login_user = %[2]s
default_internal_group = %[3]s
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = uid=%[4]s gid=%[5]s home=%[1]s/home
}
service auth {
  unix_listener %[6]s {
    mode = 0600
  }
}
`, dir, u.Username, g.Name, u.Uid, u.Gid, socket)
	confFile := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatalf("dovecot: write configuration: %v", err)
	}

	cmd := exec.Command(bin, "-F", "-c", confFile)
	// Dovecot explains a bad configuration on its output, and anything later
	// in dovecot.log: both go into the failure message.
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	// report reads out, so only once dovecot has exited (done is closed).
	report := func() string {
		log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		return fmt.Sprintf("output:\n%s\ndovecot.log:\n%s", out, log)
	}

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("dovecot exited early; %s", report())
		default:
		}
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return socket
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	t.Fatalf("dovecot auth socket %s did not appear within 15s; %s", socket, report())
	return ""
}

// dovecotBinary finds dovecot on PATH or in /usr/sbin, where packages put it
// and which is often not on a user's PATH, and skips the test without it.
func dovecotBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	if p, err := exec.LookPath("/usr/sbin/dovecot"); err == nil {
		return p
	}
	t.Skip("dovecot not installed (make test-deps installs dovecot-core)")
	return ""
}
