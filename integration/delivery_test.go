package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end delivery: real yubin nodes deliver to real peers (Postfix's
// smtp-sink, the bench concurrency sink, Dovecot LMTP, local mailboxes) and
// the results are checked at the peer, in the maillog and in the queue.

// smtpSink is a running Postfix smtp-sink. Its -c counters are read from
// stdout so the test knows when each message arrived.
type smtpSink struct {
	t    *testing.T
	Host string
	Port int

	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	arrivals []time.Time // one per accepted message
	out      bytes.Buffer
}

var sinkMesg = regexp.MustCompile(`mesg=(\d+)`)

// startSMTPSink runs `smtp-sink -c [opts] host:port 100` and waits until it
// answers. port 0 picks a free port.
func startSMTPSink(t *testing.T, host string, port int, opts ...string) *smtpSink {
	t.Helper()
	bin := needTool(t, "smtp-sink")
	if port == 0 {
		port = freePort(t)
	}
	args := []string{"-c"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // required when run as root
	}
	args = append(args, opts...)
	args = append(args, net.JoinHostPort(host, strconv.Itoa(port)), "100")
	s := &smtpSink{t: t, Host: host, Port: port, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.out}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	go s.readCounters(stdout)
	t.Cleanup(s.stop)
	waitListening(t, s.Addr(), s.done, s.output)
	return s
}

// readCounters follows the "sess=N quit=N mesg=N" lines (separated by \r)
// and records the time each new message was counted.
func (s *smtpSink) readCounters(r io.Reader) {
	defer close(s.done)
	br := bufio.NewReader(r)
	seen := 0
	for {
		chunk, err := br.ReadString('\r')
		if m := sinkMesg.FindStringSubmatch(chunk); m != nil {
			n, _ := strconv.Atoi(m[1])
			s.mu.Lock()
			for ; seen < n; seen++ {
				s.arrivals = append(s.arrivals, time.Now())
			}
			s.mu.Unlock()
		}
		if err != nil {
			s.cmd.Wait()
			return
		}
	}
}

func (s *smtpSink) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages is the number of messages the sink has accepted.
func (s *smtpSink) Messages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrivals)
}

// Arrivals returns the time each message was accepted, in order.
func (s *smtpSink) Arrivals() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrivals...)
}

func (s *smtpSink) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// stop kills the sink by PID and waits for it, so its port can be reused.
func (s *smtpSink) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("smtp-sink pid %d did not exit", s.cmd.Process.Pid)
	}
}

// waitListening polls addr until it accepts a connection, failing early if
// the process (done) exits.
func waitListening(t *testing.T, addr string, done <-chan struct{}, output func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("peer for %s exited during start:\n%s", addr, output())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("peer did not listen on %s:\n%s", addr, output())
}

// writeFile writes a configuration file and fails the test on error.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sendN submits count messages, each to rcpts, and returns their queue IDs.
func sendN(t *testing.T, n *node, count int, from string, rcpts []string) []string {
	t.Helper()
	var ids []string
	for i := 0; i < count; i++ {
		r, err := smtpSend(n.SMTP, "", from, rcpts,
			fmt.Sprintf("Message-ID: <e2e-%d-%d@yubin.test>\r\nSubject: e2e %d\r\n\r\nbody %d\r\n", time.Now().UnixNano(), i, i, i))
		if err != nil || r.queueID() == "" {
			t.Fatalf("message %d: %v %+v", i, err, r)
		}
		ids = append(ids, r.queueID())
	}
	return ids
}

// logLines returns the maillog lines matching re.
func logLines(n *node, re *regexp.Regexp) []string {
	var out []string
	for _, line := range strings.Split(n.maillog(), "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// waitQueueEmpty waits until postqueue -j lists nothing.
func waitQueueEmpty(t *testing.T, n *node, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "an empty queue", func() bool { return len(n.queue()) == 0 })
}

// waitRemoved waits until every queue ID has its "ID: removed" line and
// shows the maillog when that does not happen in time.
func waitRemoved(t *testing.T, n *node, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := n.maillog()
		missing := 0
		for _, id := range ids {
			if !strings.Contains(log, id+": removed") {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d messages are not removed; maillog:\n%s", timeout, missing, len(ids), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sentLine matches one Postfix delivery log line and captures the queue ID,
// recipient, relay, delays and dsn.
var sentLine = regexp.MustCompile(`\]: ([0-9A-Z]+): to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,]+),(?: conn_use=\d+,)? delay=[0-9.]+, delays=([0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+), dsn=(2\.\d+\.\d+), status=sent \(`)

func TestDeliveryRelayhostSmtpSink(t *testing.T) {
	src := needTool(t, "smtp-source")
	sink := startSMTPSink(t, "127.0.0.1", 0)
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	n.start()
	const total = 200
	out, err := exec.Command(src, "-s", "10", "-m", strconv.Itoa(total), "-f", "load@yubin.test",
		"-t", "sink@remote.example", n.SMTP).CombinedOutput()
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "200 messages at the sink", func() bool { return sink.Messages() >= total })
	waitQueueEmpty(t, n, 30*time.Second)
	if got := sink.Messages(); got != total {
		t.Errorf("sink counted %d messages, want %d", got, total)
	}
	sent := logLines(n, sentLine)
	if len(sent) != total {
		t.Fatalf("%d status=sent lines, want %d:\n%s", len(sent), total, strings.Join(sent[:min(len(sent), 5)], "\n"))
	}
	wantRelay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", sink.Port)
	ids := map[string]bool{}
	for _, line := range sent {
		m := sentLine.FindStringSubmatch(line)
		if m[2] != "sink@remote.example" || m[3] != wantRelay || m[5] != "2.0.0" || !strings.Contains(line, "smtp[") {
			t.Fatalf("unexpected delivery line (want relay=%s dsn=2.0.0 via smtp):\n%s", wantRelay, line)
		}
		ids[m[1]] = true
	}
	if len(ids) != total {
		t.Fatalf("%d distinct queue IDs delivered, want %d", len(ids), total)
	}
	log := n.maillog()
	for id := range ids {
		if !strings.Contains(log, id+": removed") {
			t.Fatalf("no %q line", id+": removed")
		}
	}

	pflog := needTool(t, "pflogsumm")
	report, err := exec.Command(pflog, "--syslog-name=yubin", n.Log).CombinedOutput()
	if err != nil {
		t.Fatalf("pflogsumm: %v\n%s", err, report)
	}
	for _, what := range []string{"received", "delivered"} {
		re := regexp.MustCompile(`(?m)^\s*(\d+)\s+` + what + `\s*$`)
		m := re.FindSubmatch(report)
		if m == nil || string(m[1]) != strconv.Itoa(total) {
			t.Errorf("pflogsumm does not report %d %s:\n%s", total, what, report)
		}
	}
}

// nobodyDir returns a fresh directory that the unprivileged user "nobody"
// can write to, for deliveries that run with nobody's privileges (alias
// file and command targets, virtual mailboxes). Needs root to matter.
func nobodyDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	// t.TempDir directories are 0700; let nobody traverse the per-test parent.
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(d, 65534, 65534); err != nil {
		t.Fatalf("chown %s to nobody: %v", d, err)
	}
	return d
}

// makeSpool creates the node's mail_spool_directory like an installation
// does (yubin, like Postfix, does not create it): root-owned and not
// world-writable, so mailboxes are created with root privileges.
func makeSpool(t *testing.T, n *node) string {
	t.Helper()
	spool := filepath.Join(n.Dir, "mail")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	return spool
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: local and virtual delivery change to the recipient's user ID")
	}
}

// fileOwner returns the numeric owner of path.
func fileOwner(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no Unix file ownership on this platform")
	}
	return int(st.Uid)
}

// readFile returns a file's text, or "" if it does not exist yet.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Postfix's qmgr logs "from=..., nrcpt=N (queue active)" once each time a
// message enters the active queue; log analysers count these lines.
func TestDeliveryQmgrLogsOneActivation(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.1", 0)
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	n.start()
	ids := sendN(t, n, 3, "once@yubin.test", []string{"sink@remote.example"})
	waitRemoved(t, n, 20*time.Second, ids...)
	for _, id := range ids {
		active := logLines(n, regexp.MustCompile(`qmgr\[\d+\]: `+id+`: from=<once@yubin\.test>, size=\d+, nrcpt=1 \(queue active\)`))
		if len(active) != 1 {
			t.Errorf("%s: %d (queue active) lines for a message delivered at the first attempt, want 1:\n%s", id, len(active), strings.Join(active, "\n"))
		}
	}
	if got := sink.Messages(); got != len(ids) {
		t.Errorf("sink received %d messages, want %d", got, len(ids))
	}
}

func TestDeliveryMXFallback(t *testing.T) {
	// The node listens on 127.0.0.1, the sink on 127.0.0.3 and nothing on
	// 127.0.0.2, so no MX is one of the node's own addresses.
	sink := startSMTPSink(t, "127.0.0.3", 0)
	zone := newDNSZone(t,
		"example.test. 60 IN MX 10 mx1.example.test.",
		"example.test. 60 IN MX 20 mx2.example.test.",
		"mx1.example.test. 60 IN A 127.0.0.2",
		"mx2.example.test. 60 IN A 127.0.0.3",
		"backup.test. 60 IN MX 10 mx2.example.test.",
		"backup.test. 60 IN MX 20 mx1.example.test.",
		"implicit.test. 60 IN A 127.0.0.3",
	)
	n := newNode(t, fmt.Sprintf("dns_servers = %s\nsmtp_tcp_port = %d\n", zone.Addr, sink.Port), "")
	n.start()
	ids := sendN(t, n, 1, "a@yubin.test", []string{"u@example.test"})
	ids = append(ids, sendN(t, n, 1, "a@yubin.test", []string{"u@backup.test"})...)
	ids = append(ids, sendN(t, n, 1, "a@yubin.test", []string{"u@implicit.test"})...)
	waitRemoved(t, n, 30*time.Second, ids...)
	if got := sink.Messages(); got != 3 {
		t.Fatalf("sink received %d messages, want 3", got)
	}
	want := map[string]string{
		// The preferred MX refuses the connection: the next MX gets the mail.
		"u@example.test": fmt.Sprintf("mx2.example.test[127.0.0.3]:%d", sink.Port),
		"u@backup.test":  fmt.Sprintf("mx2.example.test[127.0.0.3]:%d", sink.Port),
		// No MX record: the domain's own A record is the mail exchanger.
		"u@implicit.test": fmt.Sprintf("implicit.test[127.0.0.3]:%d", sink.Port),
	}
	for _, line := range logLines(n, sentLine) {
		m := sentLine.FindStringSubmatch(line)
		if relay, ok := want[m[2]]; ok && m[3] == relay {
			delete(want, m[2])
		}
	}
	if len(want) != 0 {
		t.Fatalf("no status=sent line with the expected relay for %v:\n%s", want, n.maillog())
	}
	for _, q := range []string{"example.test MX", "backup.test MX", "implicit.test MX", "mx2.example.test A"} {
		if zone.Queries(q) == 0 {
			t.Errorf("no %s query reached the test DNS server", q)
		}
	}
}

// Postfix's smtp client logs each failed connection before it tries the
// next MX ("connect to host[addr]:port: Connection refused"), and the last
// failure is the deferral reason.
func TestDeliveryLogsFailedMXConnection(t *testing.T) {
	port := freePort(t) // nothing listens on it, at either address
	zone := newDNSZone(t,
		"down.test. 60 IN MX 10 mx1.down.test.",
		"down.test. 60 IN MX 20 mx2.down.test.",
		"mx1.down.test. 60 IN A 127.0.0.2",
		"mx2.down.test. 60 IN A 127.0.0.3",
	)
	n := newNode(t, fmt.Sprintf("dns_servers = %s\nsmtp_tcp_port = %d\n", zone.Addr, port), "")
	n.start()
	ids := sendN(t, n, 1, "a@yubin.test", []string{"u@down.test"})
	waitFor(t, 20*time.Second, "the deferral", func() bool { return strings.Contains(n.maillog(), ids[0]+": to=<u@down.test>") })
	log := n.maillog()
	deferred := regexp.MustCompile(ids[0] + `: to=<u@down\.test>, relay=none, .*status=deferred \(connect to mx2\.down\.test\[127\.0\.0\.3\]:` + strconv.Itoa(port) + `: Connection refused\)`)
	if !deferred.MatchString(log) {
		t.Errorf("deferral does not name the last MX tried:\n%s", log)
	}
	if !regexp.MustCompile(`smtp\[\d+\]: connect to mx1\.down\.test\[127\.0\.0\.2\]:` + strconv.Itoa(port) + `: Connection refused`).MatchString(log) {
		t.Errorf("the failed connection to the preferred MX is not logged:\n%s", log)
	}
}

// concurrencySink runs the bench's sink_concurrency.py, which counts
// messages, recipients and simultaneous sessions and can refuse a second
// parallel session like docomo.ne.jp.
type concurrencySink struct {
	Port int
	JSON string
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
	mu   sync.Mutex
}

// concurrencyStats is the script's JSON summary (fields as in its as_dict).
type concurrencyStats struct {
	Messages      int `json:"messages"`
	Recipients    int `json:"recipients"`
	Connections   int `json:"connections"`
	Refused       int `json:"refused"`
	MaxConcurrent int `json:"max_concurrent"`
	MaxAttempted  int `json:"max_attempted"`
}

func startConcurrencySink(t *testing.T, host string, args ...string) *concurrencySink {
	t.Helper()
	py := needTool(t, "python3")
	script, err := filepath.Abs(filepath.Join("..", "..", "shared", "bench", "sink_concurrency.py"))
	if err != nil || !fileExists(script) {
		t.Skipf("bench sink %s not found (it lives in the shared checkout next to the repository)", script)
	}
	s := &concurrencySink{Port: freePort(t), JSON: filepath.Join(t.TempDir(), "sink.json"), done: make(chan struct{})}
	all := append([]string{script, "--listen", net.JoinHostPort(host, strconv.Itoa(s.Port)), "--json", s.JSON, "--interval", "0.2"}, args...)
	s.cmd = exec.Command(py, all...)
	s.cmd.Stdout = &lockedWriter{mu: &s.mu, w: &s.out}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	// The JSON file appears right after the bind; a probe connection would
	// count as a session, so wait for the file instead.
	waitFor(t, 15*time.Second, "the concurrency sink to bind", func() bool {
		select {
		case <-s.done:
			t.Fatalf("sink_concurrency.py exited:\n%s", s.output())
		default:
		}
		return fileExists(s.JSON)
	})
	return s
}

func (s *concurrencySink) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// stop sends SIGTERM (the script writes its final JSON then) and waits.
func (s *concurrencySink) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("sink_concurrency.py pid %d ignored SIGTERM", s.cmd.Process.Pid)
	}
}

func (s *concurrencySink) stats(t *testing.T) concurrencyStats {
	t.Helper()
	var st concurrencyStats
	b, err := os.ReadFile(s.JSON)
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		t.Fatalf("sink JSON %s: %v", s.JSON, err)
	}
	return st
}

// docomoNode is the seed configuration for a receiver that refuses a second
// parallel session: docomo.ne.jp (and its subdomains) use a transport with
// one process, one session per destination and one recipient per message.
// The domain's MX points at host:port through the test DNS server.
func docomoNode(t *testing.T, host string, port int, extraMain string) *node {
	t.Helper()
	zone := newDNSZone(t,
		"docomo.ne.jp. 60 IN MX 10 mfsmax.docomo.ne.jp.",
		"mfsmax.docomo.ne.jp. 60 IN A "+host,
	)
	transport := filepath.Join(t.TempDir(), "transport")
	writeFile(t, transport, "docomo.ne.jp docomo-smtp:\n.docomo.ne.jp docomo-smtp:\n")
	return newNode(t, fmt.Sprintf("dns_servers = %s\nsmtp_tcp_port = %d\ntransport_maps = texthash:%s\n%s", zone.Addr, port, transport, extraMain),
		"docomo-smtp unix - - n - 1 smtp\n  -o smtp_destination_concurrency_limit=1\n  -o smtp_destination_recipient_limit=1\n")
}

func TestDeliveryDocomoOneSession(t *testing.T) {
	sink := startConcurrencySink(t, "127.0.0.3", "--max-concurrent", "1", "--refuse", "421")
	n := docomoNode(t, "127.0.0.3", sink.Port, "")
	n.start()
	const messages = 30
	var ids []string
	for i := 0; i < messages; i++ {
		ids = append(ids, sendN(t, n, 1, "shop@yubin.test",
			[]string{fmt.Sprintf("a%d@docomo.ne.jp", i), fmt.Sprintf("b%d@docomo.ne.jp", i)})...)
	}
	waitRemoved(t, n, 60*time.Second, ids...)
	waitQueueEmpty(t, n, 10*time.Second)
	sink.stop(t)
	st := sink.stats(t)
	t.Logf("docomo sink: %+v", st)
	if st.Messages != 2*messages || st.Recipients != 2*messages {
		t.Errorf("sink got %d messages with %d recipients, want %d with one recipient each", st.Messages, st.Recipients, 2*messages)
	}
	if st.MaxConcurrent != 1 || st.MaxAttempted != 1 || st.Refused != 0 {
		t.Errorf("sessions: max_concurrent=%d max_attempted=%d refused=%d, want 1, 1, 0", st.MaxConcurrent, st.MaxAttempted, st.Refused)
	}
	sent := logLines(n, sentLine)
	if len(sent) != 2*messages {
		t.Fatalf("%d status=sent lines, want %d", len(sent), 2*messages)
	}
	relay := fmt.Sprintf("mfsmax.docomo.ne.jp[127.0.0.3]:%d", sink.Port)
	for _, line := range sent {
		if m := sentLine.FindStringSubmatch(line); m[3] != relay {
			t.Fatalf("relay %s, want %s:\n%s", m[3], relay, line)
		}
	}
	if strings.Contains(n.maillog(), "status=deferred") {
		t.Errorf("deliveries were deferred:\n%s", n.maillog())
	}
}

func TestDeliveryDocomoRateDelay(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.3", 0)
	n := docomoNode(t, "127.0.0.3", sink.Port, "docomo-smtp_destination_rate_delay = 2s\n")
	n.start()
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, sendN(t, n, 1, "shop@yubin.test", []string{fmt.Sprintf("u%d@docomo.ne.jp", i)})...)
	}
	waitRemoved(t, n, 40*time.Second, ids...)
	at := sink.Arrivals()
	if len(at) != 4 {
		t.Fatalf("sink received %d messages, want 4", len(at))
	}
	for i := 1; i < len(at); i++ {
		// 2s apart, less a margin for when each delivery's bytes arrive.
		if gap := at[i].Sub(at[i-1]); gap < 1800*time.Millisecond {
			t.Errorf("deliveries %d and %d only %v apart with a 2s rate delay", i, i+1, gap)
		}
	}
}

func TestDeliveryDeferThenFlush(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.1", 0, "-r", "RCPT")
	// Long backoff: only postqueue -f can bring the message back early.
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h\n", sink.Port), "")
	n.start()
	ids := sendN(t, n, 1, "a@yubin.test", []string{"later@remote.example"})
	waitFor(t, 20*time.Second, "the message to be deferred", func() bool {
		q := n.queue()
		return len(q) == 1 && q[0].Queue == "deferred"
	})
	q := n.queue()
	reason := q[0].Recipients[0].Reason
	if !regexp.MustCompile(`^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 4\d\d .*\(in reply to RCPT TO command\)$`).MatchString(reason) {
		t.Errorf("delay reason %q", reason)
	}
	mailq := n.mustTool("", "mailq")
	if !strings.Contains(mailq, ids[0]) || !strings.Contains(mailq, "(host 127.0.0.1[127.0.0.1] said: 4") || !strings.Contains(mailq, "later@remote.example") {
		t.Errorf("mailq does not show the deferral:\n%s", mailq)
	}
	if !regexp.MustCompile(ids[0] + `: to=<later@remote\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=4\.\d\.\d, status=deferred \(host `).MatchString(n.maillog()) {
		t.Errorf("no status=deferred line:\n%s", n.maillog())
	}

	// The receiver recovers on the same port; a flush delivers at once.
	sink.stop()
	sink = startSMTPSink(t, "127.0.0.1", sink.Port)
	n.mustTool("", "postqueue", "-f")
	waitRemoved(t, n, 20*time.Second, ids...)
	if sink.Messages() != 1 {
		t.Fatalf("sink received %d messages after the flush, want 1", sink.Messages())
	}
	if len(n.queue()) != 0 {
		t.Fatalf("queue not empty after delivery:\n%s", n.mustTool("", "mailq"))
	}
	if !regexp.MustCompile(ids[0] + `: to=<later@remote\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+,.* dsn=2\.0\.0, status=sent`).MatchString(n.maillog()) {
		t.Errorf("no status=sent line after the flush:\n%s", n.maillog())
	}
}

func TestDeliveryRetryAfterBackoff(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.1", 0, "-r", "RCPT")
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n", sink.Port), "")
	n.start()
	ids := sendN(t, n, 1, "a@yubin.test", []string{"later@remote.example"})
	waitFor(t, 20*time.Second, "a deferral", func() bool { return strings.Contains(n.maillog(), ids[0]+": to=<later@remote.example>") })
	sink.stop()
	sink = startSMTPSink(t, "127.0.0.1", sink.Port)
	// No flush: the queue manager retries by itself after the backoff.
	waitRemoved(t, n, 20*time.Second, ids...)
	if sink.Messages() != 1 {
		t.Fatalf("sink received %d messages, want 1", sink.Messages())
	}
}

// checkBounce waits for the non-delivery notice about queue ID id and
// checks it in the local sender's mbox.
func checkBounce(t *testing.T, n *node, mbox, id, rcpt string) {
	t.Helper()
	log := n.maillog()
	if !regexp.MustCompile(id + `: to=<` + regexp.QuoteMeta(rcpt) + `>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=5\.\d\.\d, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 5\d\d .*\(in reply to RCPT TO command\)\)`).MatchString(log) {
		t.Errorf("no status=bounced line for %s:\n%s", rcpt, log)
	}
	ndn := regexp.MustCompile(id + `: sender non-delivery notification: ([0-9A-Z]+)`).FindStringSubmatch(log)
	if ndn == nil {
		t.Fatalf("no sender non-delivery notification line for %s:\n%s", id, log)
	}
	waitRemoved(t, n, 20*time.Second, ndn[1])
	box := readFile(mbox)
	for _, want := range []string{"From MAILER-DAEMON ", "Subject: Undelivered Mail Returned to Sender",
		"Content-Type: multipart/report; report-type=delivery-status;", "<" + rcpt + ">",
		"Final-Recipient: rfc822; " + rcpt, "Action: failed", "Status: 5.", "Subject: e2e 0"} {
		if !strings.Contains(box, want) {
			t.Errorf("bounce lacks %q:\n%s", want, box)
		}
	}
	if uid := fileOwner(t, mbox); uid != 65534 {
		t.Errorf("mailbox owned by uid %d, want nobody (65534)", uid)
	}
}

// A message whose only recipient is refused with 5xx returns to its local
// sender as a DSN, and then leaves the queue.
func TestDeliveryBounceToLocalSender(t *testing.T) {
	needRoot(t)
	sink := startSMTPSink(t, "127.0.0.1", 0, "-f", "RCPT")
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	n.start()
	mbox := filepath.Join(makeSpool(t, n), "nobody")
	ids := sendN(t, n, 1, "nobody@mx.yubin.test", []string{"gone@remote.example"})
	waitRemoved(t, n, 20*time.Second, ids...)
	checkBounce(t, n, mbox, ids[0], "gone@remote.example")
}

// One recipient bounces while another is deferred: the sender hears about
// the bounce at once and the message stays queued for the other.
func TestDeliveryPartialBounceToLocalSender(t *testing.T) {
	needRoot(t)
	sink := startSMTPSink(t, "127.0.0.1", 0, "-f", "RCPT")
	transport := filepath.Join(t.TempDir(), "transport")
	writeFile(t, transport, fmt.Sprintf("down.example smtp:[127.0.0.1]:%d\n", freePort(t)))
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\ntransport_maps = texthash:%s\n", sink.Port, transport), "")
	n.start()
	mbox := filepath.Join(makeSpool(t, n), "nobody")
	ids := sendN(t, n, 1, "nobody@mx.yubin.test", []string{"gone@remote.example", "later@down.example"})
	waitFor(t, 20*time.Second, "the bounce notice", func() bool {
		return strings.Contains(n.maillog(), ids[0]+": sender non-delivery notification: ")
	})
	checkBounce(t, n, mbox, ids[0], "gone@remote.example")
	if strings.Contains(readFile(mbox), "later@down.example") {
		t.Errorf("the deferred recipient is in the bounce:\n%s", readFile(mbox))
	}
	q := n.queue()
	if len(q) != 1 || q[0].ID != ids[0] || q[0].Queue != "deferred" || len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != "later@down.example" {
		t.Errorf("queue %+v, want %s deferred for later@down.example only", q, ids[0])
	}
}

// A message from the null sender that bounces is not returned to anyone:
// that is how bounce loops end.
func TestDeliveryNullSenderBounceHasNoNotice(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.1", 0, "-f", "RCPT")
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	n.start()
	nullIDs := sendN(t, n, 1, "", []string{"gone2@remote.example"})
	waitRemoved(t, n, 20*time.Second, nullIDs...)
	log := n.maillog()
	if !regexp.MustCompile(nullIDs[0] + `: to=<gone2@remote\.example>, .*dsn=5\.\d\.\d, status=bounced`).MatchString(log) {
		t.Errorf("null-sender message not bounced:\n%s", log)
	}
	if strings.Contains(log, "sender non-delivery notification") || strings.Contains(log, "cannot send") {
		t.Errorf("a notice was attempted for a null-sender message:\n%s", log)
	}
	if got := len(logLines(n, regexp.MustCompile(`cleanup\[\d+\]: [0-9A-Z]+: message-id=`))); got != 1 {
		t.Errorf("%d messages were queued, want only the original", got)
	}
	if len(n.queue()) != 0 {
		t.Errorf("queue not empty:\n%s", n.mustTool("", "mailq"))
	}
}

func TestDeliveryLocalMailboxAndAliases(t *testing.T) {
	needRoot(t)
	out := nobodyDir(t)
	fileTarget := filepath.Join(out, "filecopy.mbox")
	cmdTarget := filepath.Join(out, "rcpt.txt")
	aliases := filepath.Join(t.TempDir(), "aliases")
	writeFile(t, aliases, fmt.Sprintf("# test aliases\nfilecopy: %s\ncmdcopy: \"|echo $SENDER $RECIPIENT >> %s\"\nboth: nobody, filecopy\n", fileTarget, cmdTarget))
	n := newNode(t, "alias_maps = hash:"+aliases+"\n", "")
	n.start()
	mbox := filepath.Join(makeSpool(t, n), "nobody")
	var ids []string
	for _, rcpt := range []string{"nobody@mx.yubin.test", "filecopy@mx.yubin.test", "cmdcopy@mx.yubin.test", "both@mx.yubin.test"} {
		ids = append(ids, sendN(t, n, 1, "alice@yubin.test", []string{rcpt})...)
	}
	waitRemoved(t, n, 20*time.Second, ids...)
	if st := logLines(n, regexp.MustCompile(`status=(deferred|bounced)`)); len(st) > 0 {
		t.Fatalf("local deliveries failed:\n%s", strings.Join(st, "\n"))
	}

	box := readFile(mbox)
	if got := strings.Count("\n"+box, "\nFrom alice@yubin.test "); got != 2 {
		t.Errorf("%s holds %d messages, want 2 (direct and via alias both):\n%s", mbox, got, box)
	}
	for _, want := range []string{"Delivered-To: nobody@mx.yubin.test", "Return-Path: <alice@yubin.test>"} {
		if !strings.Contains(box, want) {
			t.Errorf("mailbox lacks %q:\n%s", want, box)
		}
	}
	if uid := fileOwner(t, mbox); uid != 65534 {
		t.Errorf("mailbox owned by uid %d, want nobody (65534)", uid)
	}
	copyBox := readFile(fileTarget)
	if got := strings.Count("\n"+copyBox, "\nFrom alice@yubin.test "); got != 2 {
		t.Errorf("%s holds %d messages, want 2:\n%s", fileTarget, got, copyBox)
	}
	if got := readFile(cmdTarget); got != "alice@yubin.test cmdcopy@mx.yubin.test\n" {
		t.Errorf("alias command wrote %q, want the sender and recipient", got)
	}
	// The alias file is root's, so its file and command targets run with
	// default_privs (nobody), as in Postfix.
	for _, p := range []string{fileTarget, cmdTarget} {
		if uid := fileOwner(t, p); uid != 65534 {
			t.Errorf("%s written as uid %d, want default_privs nobody (65534)", p, uid)
		}
	}
	if !regexp.MustCompile(`local\[\d+\]: [0-9A-Z]+: to=<nobody@mx\.yubin\.test>, relay=local, .*dsn=2\.0\.0, status=sent \(delivered to mailbox\)`).MatchString(n.maillog()) {
		t.Errorf("no local mailbox delivery line:\n%s", n.maillog())
	}
	if !regexp.MustCompile(`to=<cmdcopy@mx\.yubin\.test>, relay=local, .*status=sent \(delivered to command: `).MatchString(n.maillog()) {
		t.Errorf("no command delivery line:\n%s", n.maillog())
	}
	if !regexp.MustCompile(`to=<filecopy@mx\.yubin\.test>, relay=local, .*status=sent \(delivered to file: ` + regexp.QuoteMeta(fileTarget) + `\)`).MatchString(n.maillog()) {
		t.Errorf("no file delivery line:\n%s", n.maillog())
	}
}

func TestDeliveryVirtualMailbox(t *testing.T) {
	needRoot(t)
	base := nobodyDir(t)
	maps := t.TempDir()
	writeFile(t, filepath.Join(maps, "vmailbox"), "u@virt.example virt.example/u/\n")
	writeFile(t, filepath.Join(maps, "valias"), "@alias.example u@virt.example\n")
	n := newNode(t, fmt.Sprintf(`virtual_mailbox_domains = virt.example
virtual_mailbox_base = %s
virtual_mailbox_maps = texthash:%s/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_alias_domains = alias.example
virtual_alias_maps = texthash:%s/valias
`, base, maps, maps), "")
	n.start()
	ids := sendN(t, n, 1, "alice@yubin.test", []string{"u@virt.example"})
	ids = append(ids, sendN(t, n, 1, "alice@yubin.test", []string{"anyone@alias.example"})...)
	waitRemoved(t, n, 20*time.Second, ids...)
	newDir := filepath.Join(base, "virt.example", "u", "new")
	files, err := os.ReadDir(newDir)
	if err != nil || len(files) != 2 {
		t.Fatalf("%s: %v, %d files, want 2\n%s", newDir, err, len(files), n.maillog())
	}
	for _, f := range files {
		p := filepath.Join(newDir, f.Name())
		if uid := fileOwner(t, p); uid != 65534 {
			t.Errorf("%s owned by uid %d, want 65534", p, uid)
		}
		if !strings.Contains(readFile(p), "Delivered-To: u@virt.example") {
			t.Errorf("%s lacks Delivered-To:\n%s", p, readFile(p))
		}
	}
	log := n.maillog()
	if !regexp.MustCompile(`virtual\[\d+\]: [0-9A-Z]+: to=<u@virt\.example>, relay=virtual, .*status=sent \(delivered to maildir\)`).MatchString(log) {
		t.Errorf("no virtual delivery line:\n%s", log)
	}
	if !regexp.MustCompile(`to=<u@virt\.example>, orig_to=<anyone@alias\.example>, relay=virtual, .*status=sent`).MatchString(log) {
		t.Errorf("no delivery line with orig_to for the catch-all alias:\n%s", log)
	}
	// An unknown user in a virtual mailbox domain is refused at RCPT.
	r, err := smtpSend(n.SMTP, "", "alice@yubin.test", []string{"nobody-here@virt.example"}, "Subject: x\r\n\r\nx\r\n")
	if err != nil || r.Code != 550 || !strings.Contains(r.Message, "User unknown in virtual mailbox table") {
		t.Errorf("unknown virtual user: %v %+v", err, r)
	}
}

// dovecotLMTP is a private Dovecot instance that only speaks LMTP on a
// loopback port and stores every user's mail in MailRoot/<localpart>.
type dovecotLMTP struct {
	Port     int
	MailRoot string
	Log      string
	cmd      *exec.Cmd
	done     chan struct{}
	mu       sync.Mutex
	out      bytes.Buffer
}

func startDovecotLMTP(t *testing.T) *dovecotLMTP {
	t.Helper()
	bin := needTool(t, "dovecot")
	needRoot(t)
	dir := t.TempDir()
	d := &dovecotLMTP{Port: freePort(t), MailRoot: nobodyDir(t), Log: filepath.Join(dir, "dovecot.log"), done: make(chan struct{})}
	conf := filepath.Join(dir, "dovecot.conf")
	writeFile(t, conf, fmt.Sprintf(`# private test instance: LMTP only, no TLS, no system paths
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = yubin-it-%[2]d
log_path = %[3]s
protocols = lmtp
ssl = no
listen = 127.0.0.1
mail_location = maildir:%[4]s/%%n
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=%[4]s/%%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[2]d
  }
}
`, dir, d.Port, d.Log, d.MailRoot))
	d.cmd = exec.Command(bin, "-F", "-c", conf)
	d.cmd.Stdout = &lockedWriter{mu: &d.mu, w: &d.out}
	d.cmd.Stderr = d.cmd.Stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	// Registered after t.TempDir, so it runs before the directories go.
	t.Cleanup(func() { d.stop(t) })
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", d.Port), d.done, func() string { return d.output() + readFile(d.Log) })
	return d
}

func (d *dovecotLMTP) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// stop ends the master by PID; its children exit when it does, so wait
// until the LMTP port is closed before the test's directories are removed.
func (d *dovecotLMTP) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("dovecot pid %d ignored SIGTERM", d.cmd.Process.Pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.Port), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDeliveryLMTPDovecot(t *testing.T) {
	dc := startDovecotLMTP(t)
	transport := filepath.Join(t.TempDir(), "transport")
	writeFile(t, transport, fmt.Sprintf("lmtp.example lmtp:inet:127.0.0.1:%d\n", dc.Port))
	n := newNode(t, "transport_maps = texthash:"+transport+"\n", "")
	n.start()
	ids := sendN(t, n, 1, "alice@yubin.test", []string{"u@lmtp.example", "v@lmtp.example"})
	waitRemoved(t, n, 30*time.Second, ids...)
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", dc.Port)
	for _, user := range []string{"u", "v"} {
		re := regexp.MustCompile(`lmtp\[\d+\]: ` + ids[0] + `: to=<` + user + `@lmtp\.example>, relay=` + regexp.QuoteMeta(relay) +
			`,(?: conn_use=\d+,)? delay=[0-9.]+, delays=[0-9./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 <` + user + `@lmtp\.example> .* Saved\)`)
		if !re.MatchString(n.maillog()) {
			t.Errorf("no LMTP delivery line for %s:\n%s", user, n.maillog())
		}
		newDir := filepath.Join(dc.MailRoot, user, "new")
		files, err := os.ReadDir(newDir)
		if err != nil || len(files) != 1 {
			t.Fatalf("%s: %v, %d files, want 1\ndovecot log:\n%s", newDir, err, len(files), readFile(dc.Log))
		}
		if msg := readFile(filepath.Join(newDir, files[0].Name())); !strings.Contains(msg, "Subject: e2e 0") {
			t.Errorf("stored message lacks the subject:\n%s", msg)
		}
	}
}
