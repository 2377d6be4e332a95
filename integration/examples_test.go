package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exampleNode starts yubin on a copy of examples/NAME with only the state
// directories, the smtpd port, the DNS server and the SMTP client's port
// replaced, so the test exercises the example as shipped.
func exampleNode(t *testing.T, name string, zone *dnsZone, smtpPort int) *node {
	t.Helper()
	src := filepath.Join("..", "examples", name)
	n := newNode(t, "", "")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(n.Dir, e.Name()), b, 0o644)
	}
	mainCF, _ := os.ReadFile(filepath.Join(src, "main.cf"))
	overrides := fmt.Sprintf(`
# test overrides: state, ports, DNS, and only 127.0.0.1 trusted so that
# 127.0.0.2 can play a stranger
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[2]s
mail_spool_directory = %[1]s/mail
inet_interfaces = 127.0.0.1, 127.0.0.2
mynetworks = 127.0.0.1/32
dns_servers = %[3]s
smtp_tcp_port = %[4]d
yubin_metrics_address =
`, n.Dir, n.Log, zone.Addr, smtpPort)
	os.WriteFile(filepath.Join(n.Dir, "main.cf"), append(mainCF, overrides...), 0o644)
	masterCF, _ := os.ReadFile(filepath.Join(src, "master.cf"))
	master := regexp.MustCompile(`(?m)^smtp(\s+inet\s)`).ReplaceAllString(string(masterCF), n.SMTP+"$1")
	os.WriteFile(filepath.Join(n.Dir, "master.cf"), []byte(master), 0o644)
	os.MkdirAll(filepath.Join(n.Dir, "mail"), 0o755)
	return n
}

func TestExampleDocomo(t *testing.T) {
	sink := startConcurrencySink(t, "127.0.0.3", "--max-concurrent", "1", "--refuse", "421")
	zone := newDNSZone(t, "docomo.ne.jp. 60 IN MX 10 mfsmax.docomo.ne.jp.", "mfsmax.docomo.ne.jp. 60 IN A 127.0.0.3")
	n := exampleNode(t, "docomo", zone, sink.Port)
	n.start()
	ids := sendN(t, n, 1, "shop@example.jp", []string{"a@docomo.ne.jp", "b@docomo.ne.jp"})
	waitRemoved(t, n, 30*time.Second, ids...)
	sink.stop(t)
	st := sink.stats(t)
	if st.Messages != 2 || st.Recipients != 2 || st.MaxAttempted != 1 {
		t.Fatalf("sink %+v: want 2 deliveries of one recipient, never two sessions", st)
	}
	times := logLines(n, regexp.MustCompile(`status=sent`))
	if len(times) != 2 {
		t.Fatalf("sent lines: %v", times)
	}
	// 5 s apart (docomo-smtp_destination_rate_delay): the log has second resolution.
	t1, _ := time.Parse(time.Stamp, times[0][:15])
	t2, _ := time.Parse(time.Stamp, times[1][:15])
	if d := t2.Sub(t1); d < 4*time.Second {
		t.Fatalf("deliveries %v apart, want about 5s:\n%s", d, strings.Join(times, "\n"))
	}
}

func TestExampleBackupMX(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.3", 0)
	zone := newDNSZone(t, "mail1.example.jp. 60 IN A 127.0.0.3")
	n := exampleNode(t, "backup-mx", zone, sink.Port)
	n.start()
	// A stranger may send to the relayed domain, and it goes to the primary.
	r, err := smtpSend(n.SMTP, "127.0.0.2", "someone@outside.example", []string{"user@example.jp"}, "Subject: for the primary\r\n\r\nx\r\n")
	if err != nil || r.queueID() == "" {
		t.Fatalf("mail for the relayed domain: %v %+v", err, r)
	}
	waitRemoved(t, n, 20*time.Second, r.queueID())
	if !strings.Contains(n.maillog(), fmt.Sprintf("relay=mail1.example.jp[127.0.0.3]:%d", sink.Port)) {
		t.Fatalf("not relayed to the primary:\n%s", n.maillog())
	}
	// ...but not to anywhere else.
	r, err = smtpSend(n.SMTP, "127.0.0.2", "someone@outside.example", []string{"victim@elsewhere.example"}, "x\r\n")
	if err != nil || r.Code != 554 || !strings.Contains(r.Message, "Relay access denied") {
		t.Fatalf("relay to another domain: %v %+v", err, r)
	}
}

func TestExampleVirtualAlias(t *testing.T) {
	needRoot(t)
	sink := startSMTPSink(t, "127.0.0.3", 0)
	zone := newDNSZone(t, "remote.example. 60 IN MX 10 mx.remote.example.", "mx.remote.example. 60 IN A 127.0.0.3")
	n := exampleNode(t, "virtual-alias", zone, sink.Port)
	n.start()
	ids := sendN(t, n, 1, "a@example.jp", []string{"webmaster@alias.example.jp", "unknown@alias.example.jp"})
	waitRemoved(t, n, 20*time.Second, ids...)
	log := n.maillog()
	for _, want := range []string{"to=<nobody-archive@remote.example>, orig_to=<webmaster@alias.example.jp>",
		"to=<catchall@remote.example>, orig_to=<unknown@alias.example.jp>",
		"to=<nobody@mail.example.jp>, orig_to=<webmaster@alias.example.jp>"} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q", want)
		}
	}
	// forward-and-keep: the local copy is in nobody's mailbox.
	if b, err := os.ReadFile(filepath.Join(n.Dir, "mail", "nobody")); err != nil || !strings.Contains(string(b), "Delivered-To: nobody@mail.example.jp") {
		t.Fatalf("no local copy: %v\n%s", err, log)
	}
	// Both remote recipients share one transaction to remote.example.
	if sink.Messages() != 1 {
		t.Fatalf("sink got %d messages, want 1 (archive and catch-all together)", sink.Messages())
	}
}

func TestExampleNullClient(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.3", 0)
	zone := newDNSZone(t, "mail.example.jp. 60 IN A 127.0.0.3")
	n := exampleNode(t, "null-client", zone, sink.Port)
	n.start()
	if _, stderr, err := n.tool("Subject: cron\n\nreport\n", "sendmail", "root"); err != nil {
		t.Fatalf("sendmail: %v %s", err, stderr)
	}
	// The sink counts the message before yubin commits and logs the result.
	waitFor(t, 20*time.Second, "delivery to the hub, logged", func() bool {
		return sink.Messages() == 1 && strings.Contains(n.maillog(), "status=sent")
	})
	if !strings.Contains(n.maillog(), "to=<root@example.jp>") {
		t.Fatalf("root's mail not relayed as root@example.jp:\n%s", n.maillog())
	}
}

func TestExampleFallbackRelay(t *testing.T) {
	sink := startSMTPSink(t, "127.0.0.3", 0)
	// relay1 does not answer (nothing listens on 127.0.0.4), relay2 does.
	zone := newDNSZone(t, "relay1.example.jp. 60 IN A 127.0.0.4", "relay2.example.jp. 60 IN A 127.0.0.3")
	n := exampleNode(t, "fallback-relay", zone, sink.Port)
	n.start()
	ids := sendN(t, n, 1, "a@example.jp", []string{"someone@remote.example"})
	waitRemoved(t, n, 20*time.Second, ids...)
	log := n.maillog()
	if !strings.Contains(log, fmt.Sprintf("connect to relay1.example.jp[127.0.0.4]:%d: Connection refused", sink.Port)) ||
		!strings.Contains(log, fmt.Sprintf("relay=relay2.example.jp[127.0.0.3]:%d", sink.Port)) {
		t.Fatalf("not delivered through the fallback relay:\n%s", log)
	}
}
