package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type queued struct {
	Queue      string `json:"queue_name"`
	ID         string `json:"queue_id"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address string `json:"address"`
		Reason  string `json:"delay_reason"`
	} `json:"recipients"`
}

func (n *node) queue() []queued {
	n.t.Helper()
	out := n.mustTool("", "postqueue", "-j")
	var q []queued
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m queued
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			n.t.Fatalf("postqueue -j line %q: %v", line, err)
		}
		q = append(q, m)
	}
	return q
}

// A node whose outbound mail goes to a closed loopback port keeps every
// message deferred: a stable queue to inspect and manipulate.
func deferringNode(t *testing.T, extra string) *node {
	return newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n%s", freePort(t), extra), "")
}

func TestSwaksMailqPostsuper(t *testing.T) {
	swaks := needTool(t, "swaks")
	n := deferringNode(t, "")
	n.start()
	host, port, _ := strings.Cut(n.SMTP, ":")
	for i := 0; i < 3; i++ {
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "alice@yubin.test",
			"--to", fmt.Sprintf("user%d@remote.example", i), "--helo", "client.yubin.test",
			"--header", fmt.Sprintf("Subject: test %d", i)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "250 2.0.0 Ok: queued as ") {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	waitFor(t, 20*time.Second, "three deferred messages", func() bool {
		q := n.queue()
		if len(q) != 3 {
			return false
		}
		for _, m := range q {
			if m.Queue != "deferred" {
				return false
			}
		}
		return true
	})
	mailq := n.mustTool("", "mailq")
	for _, want := range []string{"-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------",
		"alice@yubin.test", "user1@remote.example", "Connection refused)", "-- 1 Kbytes in 3 Requests."} {
		if !strings.Contains(mailq, want) {
			t.Errorf("mailq lacks %q:\n%s", want, mailq)
		}
	}
	// A link named mailq behaves as `yubin mailq`.
	link := filepath.Join(t.TempDir(), "mailq")
	if err := os.Symlink(yubinBin, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "-c", n.Dir)
	if out, err := cmd.Output(); err != nil || string(out) != mailq {
		t.Fatalf("mailq via symlink: %v\n%s", err, out)
	}

	ids := []string{}
	for _, m := range n.queue() {
		ids = append(ids, m.ID)
	}
	_, stderr, err := n.tool("", "postsuper", "-h", ids[0])
	if err != nil || !strings.Contains(stderr, "postsuper: Placed on hold: 1 message") {
		t.Fatalf("postsuper -h: %v %s", err, stderr)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(ids[0]) + `!\s+\d+ `).MatchString(n.mustTool("", "mailq")) {
		t.Fatalf("held message not marked with !:\n%s", n.mustTool("", "mailq"))
	}
	_, stderr, _ = n.tool("", "postsuper", "-H", "ALL")
	if !strings.Contains(stderr, "postsuper: Released from hold: 1 message") {
		t.Fatalf("postsuper -H ALL: %s", stderr)
	}
	if _, stderr, err := n.tool("", "postsuper", "-d", "all"); err == nil {
		t.Fatalf("postsuper accepted lower-case all: %s", stderr)
	}
	_, stderr, _ = n.tool(ids[1]+"\n", "postsuper", "-r", "-")
	if !strings.Contains(stderr, "postsuper: Requeued: 1 message") {
		t.Fatalf("postsuper -r -: %s", stderr)
	}
	_, stderr, _ = n.tool("", "postsuper", "-d", "ALL")
	if !strings.Contains(stderr, "postsuper: Deleted: 3 messages") {
		t.Fatalf("postsuper -d ALL: %s", stderr)
	}
	if out := n.mustTool("", "mailq"); out != "Mail queue is empty\n" {
		t.Fatalf("mailq after delete: %q", out)
	}
	log := n.maillog()
	for _, want := range []string{"smtpd[", ": client=", "cleanup[", ": message-id=<", "qmgr[", ", nrcpt=1 (queue active)",
		": placed on hold", ": released from hold", ": requeued", ": removed", "disconnect from "} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q", want)
		}
	}
}

func TestRelayRefusedFromOutside(t *testing.T) {
	swaks := needTool(t, "swaks")
	n := deferringNode(t, "inet_interfaces = 127.0.0.1, 127.0.0.2\n")
	n.start()
	host, port, _ := strings.Cut(n.SMTP, ":")
	forms := []string{"victim@remote.example", "victim%remote.example@mx.yubin.test",
		`"victim@remote.example"@mx.yubin.test`, "victim@remote.example@mx.yubin.test",
		"@mx.yubin.test:victim@remote.example", "remote.example!victim@mx.yubin.test", "victim@[192.0.2.1]"}
	for _, rcpt := range forms {
		out, _ := exec.Command(swaks, "--server", host, "--port", port, "--local-interface", "127.0.0.2",
			"--from", "spammer@outside.example", "--to", rcpt, "--helo", "outside.example").CombinedOutput()
		if strings.Contains(string(out), "queued as") || !regexp.MustCompile(`<\*\*\s+[45]\d\d `).Match(out) {
			t.Errorf("relay to %s from outside was not refused:\n%s", rcpt, out)
		}
	}
	out, _ := exec.Command(swaks, "--server", host, "--port", port, "--local-interface", "127.0.0.2",
		"--from", "spammer@outside.example", "--to", "victim@remote.example").CombinedOutput()
	// Postfix's default smtpd_relay_restrictions ends in defer_unauth_destination.
	if !strings.Contains(string(out), "450 4.7.1 <victim@remote.example>: Relay access denied") {
		t.Errorf("wording:\n%s", out)
	}
	if q := n.queue(); len(q) != 0 {
		t.Fatalf("relay attempts queued: %+v", q)
	}
	if !strings.Contains(n.maillog(), "NOQUEUE: reject: RCPT from ") {
		t.Errorf("no reject line in maillog")
	}
	// The same relay from mynetworks is accepted.
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "a@yubin.test", "--to", "b@remote.example").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "queued as") {
		t.Fatalf("relay from mynetworks: %v\n%s", err, out)
	}
}

// kill -9 in the middle of a 2,000-message run: after a restart every
// message whose 250 a client saw is queued, and nothing is queued twice.
func TestKill9DuringLoad(t *testing.T) {
	n := deferringNode(t, "smtpd_client_restrictions = check_client_access static:HOLD\n")
	n.start()
	const total, workers = 2000, 10
	var (
		mu     sync.Mutex
		acked  = map[string]string{} // queue ID -> Message-ID
		next   atomic.Int64
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	if src, err := exec.LookPath("smtp-source"); err == nil || fileExists("/usr/sbin/smtp-source") {
		if err != nil {
			src = "/usr/sbin/smtp-source"
		}
		// Extra load from Postfix's own generator while the kill happens.
		cmd := exec.Command(src, "-s", "5", "-m", "500", "-f", "load@yubin.test", "-t", "sink@remote.example", n.SMTP)
		if err := cmd.Start(); err == nil {
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				msgID := fmt.Sprintf("<kill9-%d@yubin.test>", i)
				r, err := smtpSend(n.SMTP, "", "load@yubin.test", []string{"rcpt@remote.example"},
					"Message-ID: "+msgID+"\r\nSubject: kill9\r\n\r\nbody\r\n")
				if err != nil || r.queueID() == "" {
					if killed.Load() {
						return
					}
					continue
				}
				mu.Lock()
				acked[r.queueID()] = msgID
				mu.Unlock()
			}
		}()
	}
	waitFor(t, 60*time.Second, "400 acknowledged messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 400
	})
	killed.Store(true)
	n.kill()
	wg.Wait()
	mu.Lock()
	ackedCount := len(acked)
	mu.Unlock()
	n.start()
	q := n.queue()
	seen := map[string]bool{}
	for _, m := range q {
		if seen[m.ID] {
			t.Fatalf("queue ID %s listed twice", m.ID)
		}
		seen[m.ID] = true
	}
	missing := 0
	for id := range acked {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages lost after kill -9", missing, ackedCount)
	}
	t.Logf("kill -9 after %d acknowledged messages: all present after restart (%d queued in all)", ackedCount, len(q))
}

func TestSendmailMaildropPickup(t *testing.T) {
	n := deferringNode(t, "")
	msg := "Subject: from sendmail\n\nhello\n.\nnot part of the message\n"
	// No node running: sendmail leaves the message in the maildrop.
	if out, stderr, err := n.tool(msg, "sendmail", "-f", "cron@yubin.test", "ops@remote.example"); err != nil {
		t.Fatalf("sendmail without a node: %v %s %s", err, out, stderr)
	}
	if out, stderr, err := n.tool("", "mailq"); err == nil || !strings.Contains(stderr, "not running") {
		t.Fatalf("mailq without a node should fail clearly: %v %q %q", err, out, stderr)
	}
	n.start()
	waitFor(t, 10*time.Second, "the dropped message", func() bool { return len(n.queue()) == 1 })
	// With the node running, sendmail -t submits directly.
	if _, stderr, err := n.tool("To: a@remote.example\nBcc: b@remote.example\nSubject: t\n\nbody\n", "sendmail", "-t", "-i"); err != nil {
		t.Fatalf("sendmail -t: %v %s", err, stderr)
	}
	waitFor(t, 10*time.Second, "two messages", func() bool { return len(n.queue()) == 2 })
	rcpts := 0
	for _, m := range n.queue() {
		rcpts += len(m.Recipients)
	}
	if rcpts != 3 {
		t.Fatalf("recipients %d, want 3", rcpts)
	}
	if !regexp.MustCompile(`pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=<cron@yubin.test>`).MatchString(n.maillog()) {
		t.Fatalf("no pickup line:\n%s", n.maillog())
	}
}

func TestPostconf(t *testing.T) {
	n := newNode(t, "message_size_limit = 2048000\n", "")
	out := n.mustTool("", "postconf", "-n")
	if !strings.Contains(out, "message_size_limit = 2048000\n") || strings.Contains(out, "smtpd_recipient_limit") {
		t.Fatalf("postconf -n:\n%s", out)
	}
	if out := n.mustTool("", "postconf", "-d", "smtpd_recipient_limit"); out != "smtpd_recipient_limit = 1000\n" {
		t.Fatalf("postconf -d: %q", out)
	}
	if out := n.mustTool("", "postconf", "-h", "message_size_limit"); out != "2048000\n" {
		t.Fatalf("postconf -h: %q", out)
	}
	os.WriteFile(filepath.Join(n.Dir, "main.cf"), []byte("message_size_limit = lots\n"), 0o644)
	_, stderr, err := n.tool("", "serve", "-c", n.Dir)
	if err == nil || !strings.Contains(stderr, "main.cf:1") {
		t.Fatalf("invalid value accepted: %v %s", err, stderr)
	}
}

// An ordinary user submits through the world-writable maildrop (the
// control socket is for root and yubin_admin_group), is recorded by the
// uid the kernel gives the file, and may not list or change the queue.
func TestUnprivilegedUser(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	n := deferringNode(t, "")
	n.start()
	// Let nobody reach the binary and the configuration.
	for _, d := range []string{filepath.Dir(yubinBin), n.Dir, filepath.Dir(n.Dir)} {
		os.Chmod(d, 0o755)
	}
	asNobody := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(yubinBin, args...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+n.Dir)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asNobody("Subject: from nobody\n\nhi\n", "sendmail", "-f", "root@yubin.test", "ops@remote.example"); err != nil {
		t.Fatalf("sendmail as nobody: %v %s", err, out)
	}
	waitFor(t, 10*time.Second, "the message from the maildrop", func() bool { return len(n.queue()) == 1 })
	if !regexp.MustCompile(fmt.Sprintf(`pickup\[\d+\]: [0-9A-F]+: uid=%d from=<root@yubin.test>`, uid)).MatchString(n.maillog()) {
		t.Fatalf("pickup did not record nobody's uid:\n%s", n.maillog())
	}
	if out, err := asNobody("", "mailq"); err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("mailq as nobody: %v %s", err, out)
	}
	if out, err := asNobody("", "postsuper", "-d", "ALL"); err == nil {
		t.Fatalf("postsuper as nobody succeeded: %s", out)
	}
	if len(n.queue()) != 1 {
		t.Fatal("an unprivileged user changed the queue")
	}
}
