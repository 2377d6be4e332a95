package command

import (
	"context"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

func input(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name, cmd  string
		status     mailbox.Status
		dsn        string
		wantReason string
	}{
		{"ok", "cat >/dev/null", mailbox.Sent, "2.0.0", ""},
		{"tempfail", "echo busy; exit 75", mailbox.Deferred, "4.3.0", "temporary failure. Command output: busy "},
		{"nouser", "exit 67", mailbox.Bounced, "5.1.1", "user unknown"},
		{"status 1", "echo oops >&2; exit 1", mailbox.Bounced, "5.3.0", `Command died with status 1: "echo oops >&2; exit 1". Command output: oops `},
		{"dsn in output", "echo '4.2.2 mailbox full'; exit 1", mailbox.Deferred, "4.2.2", "mailbox full "},
		{"dsn bounce", "printf '5.1.1 no such user'; exit 75", mailbox.Bounced, "5.1.1", "no such user"},
		{"signal", "kill -9 $$", mailbox.Deferred, "4.3.0", `Command died with signal 9: "kill -9 $$"`},
		{"control chars", "printf 'a\\tb\\001c'; exit 1", mailbox.Bounced, "5.3.0", `Command output: a b_c`},
		{"missing program", "/nonexistent/prog", mailbox.Deferred, "4.3.0", "temporary failure. Command output: execvp /nonexistent/prog: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Run(context.Background(), Spec{Command: tt.cmd, Input: input("Subject: x\n\nhello\n"), TimeLimit: 10 * time.Second})
			if out.Status != tt.status || out.DSN != tt.dsn || !strings.Contains(out.Reason, tt.wantReason) {
				t.Errorf("got %v %s %q; want %v %s containing %q", out.Status, out.DSN, out.Reason, tt.status, tt.dsn, tt.wantReason)
			}
		})
	}
}

func TestRunTimeLimit(t *testing.T) {
	start := time.Now()
	out := Run(context.Background(), Spec{Command: "sleep 30; echo never", TimeLimit: 200 * time.Millisecond})
	if out.Status != mailbox.Deferred || !strings.HasPrefix(out.Reason, `Command time limit exceeded: "sleep 30; echo never"`) {
		t.Errorf("got %v %q", out.Status, out.Reason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("time limit took %v to act", d)
	}
}

func TestRunInputAndEnv(t *testing.T) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "out")
	out := Run(context.Background(), Spec{
		Argv:  []string{"/bin/sh", "-c", `cat > "$1"; echo "PATH=$PATH FOO=$FOO PWD=$(pwd)" >> "$1"`, "sh", outFile},
		Env:   []string{"FOO=bar"},
		Input: input("line1\nline2\n"),
	})
	if out.Status != mailbox.Sent {
		t.Fatalf("run failed: %+v", out)
	}
	got, _ := os.ReadFile(outFile)
	if want := "line1\nline2\nPATH=/usr/bin:/bin FOO=bar PWD=/\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRunIgnoresUnreadInput: a command that exits 0 without reading its
// input has still succeeded (Postfix ignores EPIPE).
func TestRunIgnoresUnreadInput(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	out := Run(context.Background(), Spec{Command: "true", Input: input(big)})
	if out.Status != mailbox.Sent {
		t.Errorf("got %+v", out)
	}
}

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	out := Run(context.Background(), Spec{Command: `echo "5.0.0 $(id -u):$(id -g):$(id -G)"; exit 1`, RunAs: &mailbox.Owner{UID: uid, GID: gid}})
	want := u.Uid + ":" + u.Gid + ":" + u.Gid + " "
	if out.Reason != want {
		t.Errorf("ran as %q, want %q", out.Reason, want)
	}
}

func TestResolveArgv(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"/usr/bin/procmail -a x", []string{"/usr/bin/procmail", "-a", "x"}},
		{"cat", []string{"/usr/bin/cat"}},
		{"cat > /tmp/x", []string{"/bin/sh", "-c", "cat > /tmp/x"}},
		{"exit 0", []string{"/bin/sh", "-c", "exit 0"}}, // shell built-in
	}
	for _, tt := range tests {
		got, err := resolveArgv(Spec{Command: tt.cmd})
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			if tt.cmd == "cat" && err == nil && got[0] == "/bin/cat" {
				continue // /usr/bin/cat missing on this system
			}
			t.Errorf("resolveArgv(%q) = %q, %v; want %q", tt.cmd, got, err, tt.want)
		}
	}
	if _, err := resolveArgv(Spec{Command: "  "}); err == nil {
		t.Error("empty command accepted")
	}
}

func TestSplitDSN(t *testing.T) {
	tests := []struct {
		in, dsn, text string
		ok            bool
	}{
		{"5.1.1 no such user", "5.1.1", "no such user", true},
		{"4.2.2", "4.2.2", "", true},
		{"2.0.0\tok", "2.0.0", "ok", true},
		{"5.1.1x", "", "", false},
		{"3.1.1 no", "", "", false},
		{"5.1234.1 no", "", "", false},
		{"5.1. no", "", "", false},
		{"hello", "", "", false},
	}
	for _, tt := range tests {
		dsn, text, ok := splitDSN(tt.in)
		if dsn != tt.dsn || text != tt.text || ok != tt.ok {
			t.Errorf("splitDSN(%q) = %q, %q, %v", tt.in, dsn, text, ok)
		}
	}
}

func TestSysexitDetail(t *testing.T) {
	if d := SysexitDetail(ExTempFail); d.DSN != "4.3.0" || d.Text != "temporary failure" {
		t.Errorf("EX_TEMPFAIL = %+v", d)
	}
	if d := SysexitDetail(1); d.DSN != "5.3.0" || d.Text != "unknown mail system error 1" {
		t.Errorf("status 1 = %+v", d)
	}
	for code := 64; code <= 78; code++ {
		if SysexitDetail(code).Code != code {
			t.Errorf("table out of order at %d", code)
		}
	}
}
