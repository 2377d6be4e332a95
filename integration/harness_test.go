// Package integration starts real yubin processes on loopback ports and
// drives them with real peers: swaks, Postfix's smtp-source and smtp-sink,
// pflogsumm, and yubin's own command-line tools.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var yubinBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "yubin-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	yubinBin = filepath.Join(dir, "yubin")
	build := exec.Command("go", "build", "-o", yubinBin, "../cmd/yubin")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build yubin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// needTool skips the test when a real peer program is not installed.
func needTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/lib/postfix/sbin", "/usr/bin"} {
			if p := filepath.Join(dir, n); fileExists(p) {
				return p
			}
		}
	}
	t.Skipf("%s not installed (make test-deps installs it)", names[0])
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// node is one yubin process with its own configuration directory.
type node struct {
	t       *testing.T
	Dir     string // configuration directory
	SMTP    string // host:port of its smtpd
	Log     string // maillog_file
	mainCF  string
	masterC string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// newNode writes a configuration: main.cf gets base settings plus extra
// lines; master.cf an smtpd on a free port plus the standard transports.
func newNode(t *testing.T, extraMain string, extraMaster string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, Dir: dir, SMTP: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Log: filepath.Join(dir, "maillog")}
	n.mainCF = fmt.Sprintf(`myhostname = mx.yubin.test
mydomain = yubin.test
mydestination = $myhostname, localhost
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.1/32
queue_directory = %s/queue
data_directory = %s/data
maillog_file = %s
mail_spool_directory = %s/mail
dns_servers = 127.0.0.1:1
yubin_node_name = n1
yubin_metrics_address =
%s
`, dir, dir, n.Log, dir, extraMain)
	n.masterC = fmt.Sprintf(`%s inet n - n - - smtpd
smtp unix - - n - - smtp
relay unix - - n - - smtp
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
error unix - - n - - error
discard unix - - n - - discard
%s
`, n.SMTP, extraMaster)
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(n.mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(n.masterC), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	return n
}

// start runs `yubin serve` and waits until its SMTP port answers.
func (n *node) start() {
	n.t.Helper()
	n.spawn()
	n.waitReady(20 * time.Second)
}

// spawn starts `yubin serve` without waiting: cluster members must all be
// started before any of them can elect a leader and answer.
func (n *node) spawn() {
	n.t.Helper()
	n.spawnBin(yubinBin)
}

// spawnBin starts `BIN serve` without waiting for it: the yubin under test,
// or another build of it.
func (n *node) spawnBin(bin string) {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(bin, "serve", "-c", n.Dir)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &n.mu, w: &n.out}, &lockedWriter{mu: &n.mu, w: &n.out}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	done := n.done
	go func() { cmd.Wait(); close(done) }()
}

// waitReady waits until the node's SMTP port greets with 220.
func (n *node) waitReady(timeout time.Duration) {
	n.t.Helper()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			n.t.Fatalf("yubin exited during start:\n%s", n.output())
		default:
		}
		if c, err := net.DialTimeout("tcp", n.SMTP, 200*time.Millisecond); err == nil {
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := br.ReadString('\n')
			c.Write([]byte("QUIT\r\n"))
			c.Close()
			if strings.HasPrefix(line, "220") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("yubin did not answer on %s:\n%s", n.SMTP, n.output())
}

// signalOnly sends sig without waiting (SIGSTOP/SIGCONT for partitions).
func (n *node) signalOnly(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(sig)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (n *node) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.out.String()
}

// kill ends the process with SIGKILL (kill -9) and waits for it.
func (n *node) kill() { n.signal(syscall.SIGKILL) }

// stop ends the process with SIGTERM and waits for it.
func (n *node) stop() { n.signal(syscall.SIGTERM) }

func (n *node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// tool runs a yubin tool (mailq, postsuper, ...) against this node.
func (n *node) tool(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, yubinBin, args...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+n.Dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (n *node) mustTool(stdin string, args ...string) string {
	n.t.Helper()
	out, errs, err := n.tool(stdin, args...)
	if err != nil {
		n.t.Fatalf("yubin %s: %v\n%s%s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

func (n *node) maillog() string {
	b, _ := os.ReadFile(n.Log)
	return string(b)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}
