package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/yubin-mta/yubin/internal/peertest"
)

// Operations: /metrics, /healthz, /readyz and /status.json of real nodes,
// and reload by SIGHUP and `yubin reload`.

// withMetrics gives the node an operations listener on a free loopback
// port (a later main.cf line overrides the harness's empty one) and
// returns its base URL.
func withMetrics(t *testing.T, n *node) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f, err := os.OpenFile(filepath.Join(n.Dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "yubin_metrics_address = %s\n", addr); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpGet returns the status code and body of url.
func httpGet(url string) (int, string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitStatus waits until url answers with code.
func waitStatus(t *testing.T, url string, code int, timeout time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, body, err := httpGet(url)
		if err == nil && c == code {
			return
		}
		last = fmt.Sprintf("%d %q %v", c, body, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %v; last: %s", url, code, timeout, last)
}

// metrics scrapes base/metrics and parses it as Prometheus does.
func metrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := httpGet(base + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET %s/metrics: %d %v", base, code, err)
	}
	return peertest.ParseMetrics(t, body)
}

func expectSample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := peertest.MetricValue(fams, name, labels)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

// buildVersioned builds yubin the way the Makefile does, with a version and
// commit set by -ldflags.
func buildVersioned(t *testing.T, version, commit string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "yubin")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+version+" -X main.commit="+commit,
		"-o", bin, "../cmd/yubin").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Relay N messages to Postfix's smtp-sink: the metrics count exactly what
// the sink received, and describe a healthy single node.
func TestOpsMetricsCountDeliveries(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.1", 0)
	n := newNode(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	base := withMetrics(t, n)
	n.spawnBin(buildVersioned(t, "9.8.7-ops", "c0ffee1"))
	n.waitReady(20 * time.Second)
	waitStatus(t, base+"/healthz", 200, 10*time.Second)

	const total = 25
	sendN(t, n, total, "ops@yubin.test", []string{"sink@remote.example"})
	r, err := smtpSend(n.SMTP, "", "ops@yubin.test", []string{"no-such-user-4711@mx.yubin.test"}, "Subject: x\r\n\r\nx\r\n")
	if err != nil || r.Code != 550 {
		t.Fatalf("unknown local user: %v %+v, want 550", err, r)
	}
	waitFor(t, 60*time.Second, "all messages at the sink", func() bool { return sink.Messages() >= total })
	waitQueueEmpty(t, n, 30*time.Second)

	var fams map[string]*dto.MetricFamily
	waitFor(t, 10*time.Second, "delivered and sessions to settle", func() bool {
		fams = metrics(t, base)
		d, _ := peertest.MetricValue(fams, "yubin_messages_delivered_total", map[string]string{"transport": "smtp"})
		s, _ := peertest.MetricValue(fams, "yubin_smtpd_sessions", nil)
		return d == total && s == 0
	})
	if got := sink.Messages(); got != total {
		t.Fatalf("sink received %d, want %d", got, total)
	}
	expectSample(t, fams, "yubin_messages_delivered_total", map[string]string{"transport": "smtp"}, float64(sink.Messages()))
	expectSample(t, fams, "yubin_messages_accepted_total", map[string]string{"service": "smtpd"}, total)
	expectSample(t, fams, "yubin_messages_rejected_total", map[string]string{"class": "unknown_recipient"}, 1)
	if v, _ := peertest.MetricValue(fams, "yubin_messages_deferred_total", nil); v != 0 {
		t.Errorf("yubin_messages_deferred_total = %v, want none", v)
	}
	expectSample(t, fams, "yubin_delivery_delay_seconds", map[string]string{"transport": "smtp", "stage": "transmission"}, total)
	expectSample(t, fams, "yubin_smtpd_sessions", nil, 0)
	if c, _ := peertest.MetricValue(fams, "yubin_smtpd_connections_total", nil); c < total+1 {
		t.Errorf("yubin_smtpd_connections_total = %v, want at least %d", c, total+1)
	}
	for _, state := range []string{"incoming", "active", "deferred", "hold"} {
		expectSample(t, fams, "yubin_queue_messages", map[string]string{"state": state}, 0)
	}
	expectSample(t, fams, "yubin_queue_oldest_message_age_seconds", nil, 0)
	expectSample(t, fams, "yubin_raft_is_leader", nil, 1)
	expectSample(t, fams, "yubin_ready", nil, 1)
	expectSample(t, fams, "yubin_scheduler_running", nil, 1)
	expectSample(t, fams, "yubin_build_info", map[string]string{"version": "9.8.7-ops", "commit": "c0ffee1"}, 1)
	// Every message is at least an enqueue, an activation and a result.
	if c, _ := peertest.MetricValue(fams, "yubin_raft_apply_seconds", map[string]string{"result": "ok"}); c < 2*total {
		t.Errorf("yubin_raft_apply_seconds count = %v, want at least %d commits", c, 2*total)
	}
	if c, _ := peertest.MetricValue(fams, "yubin_raft_commit_index", nil); c < total {
		t.Errorf("yubin_raft_commit_index = %v, want at least one entry per message", c)
	}

	if code, body, err := httpGet(base + "/readyz"); err != nil || code != 200 || !strings.Contains(body, "ready: leader") {
		t.Errorf("/readyz = %d %q %v", code, body, err)
	}
	_, body, err := httpGet(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Node    string `json:"node"`
		Version string `json:"version"`
		Cluster struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
		Members    []struct{ Name string } `json:"members"`
		Throughput struct {
			Delivered []int `json:"delivered"`
		} `json:"throughput"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status.json: %v\n%s", err, body)
	}
	sum := 0
	for _, v := range st.Throughput.Delivered {
		sum += v
	}
	if st.Node != "n1" || st.Cluster.Leader != "n1" || len(st.Members) != 1 || st.Version != "9.8.7-ops" || sum != total {
		t.Errorf("status.json: %+v (throughput sum %d)", st, sum)
	}
}

// /readyz says 503 on a node whose majority is frozen, while /healthz still
// answers, and 200 again once the majority is back.
func TestOpsReadyzMinority(t *testing.T) {
	nodes := newCluster(t, 3, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", freePort(t)), "")
	bases := make([]string, len(nodes))
	for i, n := range nodes {
		bases[i] = withMetrics(t, n)
	}
	startAll(t, nodes)
	for _, b := range bases {
		waitStatus(t, b+"/readyz", 200, 20*time.Second)
	}
	k := leader(t, nodes, func(int) bool { return true })
	lone := (k + 1) % 3
	frozen := false
	thaw := func() {
		if !frozen {
			return
		}
		for i := range nodes {
			if i != lone {
				nodes[i].signalOnly(syscall.SIGCONT)
			}
		}
		frozen = false
	}
	defer thaw()
	for i := range nodes {
		if i != lone {
			nodes[i].signalOnly(syscall.SIGSTOP)
		}
	}
	frozen = true
	waitStatus(t, bases[lone]+"/readyz", 503, 15*time.Second)
	if code, _, err := httpGet(bases[lone] + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz of the lone node = %d %v, want 200", code, err)
	}
	fams := metrics(t, bases[lone])
	expectSample(t, fams, "yubin_ready", nil, 0)
	expectSample(t, fams, "yubin_raft_is_leader", nil, 0)
	thaw()
	waitStatus(t, bases[lone]+"/readyz", 200, 30*time.Second)
	fams = metrics(t, bases[lone])
	for i, n := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		if n == nodes[lone] {
			continue
		}
		waitFor(t, 10*time.Second, "peer "+name+" reachable again", func() bool {
			fams = metrics(t, bases[lone])
			v, _ := peertest.MetricValue(fams, "yubin_raft_peer_up", map[string]string{"peer": name})
			return v == 1
		})
	}
}

// smtpConn is an SMTP session kept open across a reload.
type smtpConn struct {
	c  net.Conn
	tp *textproto.Conn
}

func dialSMTP(t *testing.T, addr string) *smtpConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	s := &smtpConn{c: c, tp: textproto.NewConn(c)}
	t.Cleanup(func() { c.Close() })
	s.expect(t, 220, "")
	s.expect(t, 250, "EHLO client.yubin.test")
	return s
}

func (s *smtpConn) expect(t *testing.T, code int, cmd string) string {
	t.Helper()
	if cmd != "" {
		if err := s.tp.PrintfLine("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	_, msg, err := s.tp.ReadResponse(code)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return msg
}

func (s *smtpConn) send(t *testing.T, from, to, body string) {
	t.Helper()
	s.expect(t, 250, "MAIL FROM:<"+from+">")
	s.expect(t, 250, "RCPT TO:<"+to+">")
	s.expect(t, 354, "DATA")
	w := s.tp.DotWriter()
	io.WriteString(w, body)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s.expect(t, 250, "")
}

// SIGHUP applies a new transport table without dropping a connection;
// `yubin reload` reports what needs a restart and refuses a broken
// main.cf, keeping the running configuration.
func TestOpsReloadTransport(t *testing.T) {
	a := startSMTPSink(t, "127.0.0.1", 0)
	b := startSMTPSink(t, "127.0.0.1", 0)
	dir := t.TempDir()
	ta, tb := filepath.Join(dir, "transport-a"), filepath.Join(dir, "transport-b")
	writeFile(t, ta, fmt.Sprintf("remote.example smtp:[127.0.0.1]:%d\n", a.Port))
	writeFile(t, tb, fmt.Sprintf("remote.example smtp:[127.0.0.1]:%d\n", b.Port))
	n := newNode(t, "transport_maps = texthash:"+ta+"\n", "")
	base := withMetrics(t, n)
	n.start()
	waitStatus(t, base+"/readyz", 200, 10*time.Second)

	sendN(t, n, 1, "ops@yubin.test", []string{"u@remote.example"})
	waitFor(t, 30*time.Second, "the first message at sink A", func() bool { return a.Messages() == 1 })

	held := dialSMTP(t, n.SMTP) // open across the reload
	mainCF := filepath.Join(n.Dir, "main.cf")
	orig, err := os.ReadFile(mainCF)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, mainCF, strings.Replace(string(orig), "texthash:"+ta, "texthash:"+tb, 1))
	n.signalOnly(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reload in the maillog", func() bool {
		return strings.Contains(n.maillog(), "reload: applied transport_maps") && strings.Contains(n.maillog(), "reload -- version")
	})
	held.send(t, "ops@yubin.test", "v@remote.example", "Message-ID: <after-reload@yubin.test>\r\nSubject: after\r\n\r\nx\r\n")
	held.expect(t, 221, "QUIT")
	waitFor(t, 30*time.Second, "the second message at sink B", func() bool { return b.Messages() == 1 })
	if a.Messages() != 1 {
		t.Errorf("sink A got %d messages after the reload, want 1", a.Messages())
	}

	// A change that needs a restart is reported, and applies nothing.
	writeFile(t, mainCF, strings.Replace(string(orig), "texthash:"+ta, "texthash:"+tb, 1)+"smtpd_banner = $myhostname ESMTP reloaded\n")
	out, errs, err := n.tool("", "reload")
	if err != nil || !strings.Contains(errs, "smtpd_banner") || !strings.Contains(errs, "after a restart") {
		t.Errorf("yubin reload with a changed banner: %v\nstdout: %s\nstderr: %s", err, out, errs)
	}
	// A broken main.cf is refused with file:line, by the tool and by the
	// node on SIGHUP; mail still flows with the running tables.
	writeFile(t, mainCF, string(orig)+"message_size_limit = lots\n")
	out, errs, err = n.tool("", "reload")
	if err == nil || !strings.Contains(errs, "main.cf:") {
		t.Errorf("yubin reload with a broken main.cf: %v\nstdout: %s\nstderr: %s", err, out, errs)
	}
	n.signalOnly(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the failed reload in the maillog", func() bool {
		return strings.Contains(n.maillog(), "warning: reload failed, the running configuration stays in effect: "+mainCF+":")
	})
	sendN(t, n, 1, "ops@yubin.test", []string{"w@remote.example"})
	waitFor(t, 30*time.Second, "the third message at sink B (the running tables stay)", func() bool { return b.Messages() == 2 })
	fams := metrics(t, base)
	expectSample(t, fams, "yubin_config_reloads_total", map[string]string{"result": "success"}, 2)
	expectSample(t, fams, "yubin_config_reloads_total", map[string]string{"result": "failure"}, 1)

	// yubin check against the running node: its ports are no conflict.
	writeFile(t, mainCF, string(orig))
	out, errs, err = n.tool("", "check")
	if err != nil || !strings.Contains(out, ": OK (") {
		t.Errorf("yubin check on a running node: %v\nstdout: %s\nstderr: %s", err, out, errs)
	}
}

// The backup procedure of docs/operations.md: a cold copy of one stopped
// follower, restored on every member after the whole cluster was lost,
// brings back every queued message.
func TestOpsRestoreBackupOnEveryNode(t *testing.T) {
	nodes := newCluster(t, 3, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", freePort(t)), "")
	startAll(t, nodes)
	k := leader(t, nodes, func(int) bool { return true })
	ids := sendN(t, nodes[k], 3, "backup@yubin.test", []string{"u@remote.example"})
	f := (k + 1) % 3
	waitFor(t, 10*time.Second, "the messages on the follower", func() bool { return len(nodes[f].queue()) == len(ids) })
	nodes[f].stop()
	backup := t.TempDir()
	for _, d := range []string{"data", "queue"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(nodes[f].Dir, d), backup).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", d, err, out)
		}
	}
	for _, n := range nodes { // the cluster is lost
		n.kill()
		for _, d := range []string{"data", "queue"} {
			if err := os.RemoveAll(filepath.Join(n.Dir, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range nodes {
		for _, d := range []string{"data", "queue"} {
			if out, err := exec.Command("cp", "-a", filepath.Join(backup, d), n.Dir).CombinedOutput(); err != nil {
				t.Fatalf("restore %s: %v\n%s", d, err, out)
			}
		}
	}
	startAll(t, nodes)
	for i, n := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("the restored queue on n%d", i+1), func() bool {
			got := map[string]bool{}
			for _, m := range n.queue() {
				got[m.ID] = true
			}
			for _, id := range ids {
				if !got[id] {
					return false
				}
			}
			return len(got) == len(ids)
		})
	}
}

// examples/etc-yubin passes `yubin check` and postconf without warnings,
// with only its addresses and state directories moved to test ones.
func TestOpsExampleEtcYubinChecks(t *testing.T) {
	src := filepath.Join("..", "examples", "etc-yubin")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), string(b))
	}
	cluster := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	mainCF, _ := os.ReadFile(filepath.Join(dir, "main.cf"))
	writeFile(t, filepath.Join(dir, "main.cf"), string(mainCF)+fmt.Sprintf(`
queue_directory = %[1]s/state/queue
data_directory = %[1]s/state/data
maillog_file = %[1]s/log/maillog
inet_interfaces = 127.0.0.1
yubin_cluster_address = %[2]s
yubin_cluster_peers = mx1=%[2]s
yubin_metrics_address = 127.0.0.1:%[3]d
`, dir, cluster, freePort(t)))
	masterCF, _ := os.ReadFile(filepath.Join(dir, "master.cf"))
	master := strings.Replace(string(masterCF), "smtp         inet", fmt.Sprintf("127.0.0.1:%d inet", freePort(t)), 1)
	master = strings.Replace(master, "submission   inet", fmt.Sprintf("127.0.0.1:%d inet", freePort(t)), 1)
	writeFile(t, filepath.Join(dir, "master.cf"), master)

	cmd := exec.Command(yubinBin, "check", "-c", dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK (") {
		t.Fatalf("yubin check: %v\n%s", err, out)
	}
	for _, want := range []string{"4 directories", "3 tables", "4 listeners"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("yubin check did not check %s: %s", want, out)
		}
	}
	// The example as shipped has no duplicate or unknown parameter.
	out, err = exec.Command(yubinBin, "postconf", "-c", src, "-n").CombinedOutput()
	if err != nil || strings.Contains(string(out), "warning") {
		t.Errorf("postconf -n on the example: %v\n%s", err, out)
	}
}
