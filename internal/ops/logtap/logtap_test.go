package logtap

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, service, msg string
		want               Event
	}{
		{"connect", "smtpd", "connect from localhost[127.0.0.1]",
			Event{Kind: Connect, Service: "smtpd"}},
		{"disconnect", "smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
			Event{Kind: Disconnect, Service: "smtpd"}},
		{"connect of another service is not smtpd", "smtp", "connect from x",
			Event{Service: "smtp"}},
		{"accepted by smtpd", "smtpd", "69D0A7B1A2B00001: client=localhost[127.0.0.1]",
			Event{Kind: Accepted, Service: "smtpd", QueueID: "69D0A7B1A2B00001"}},
		{"accepted with sasl", "smtpd", "3F2A81C0D4E: client=unknown[127.0.0.2], sasl_method=PLAIN, sasl_username=alice",
			Event{Kind: Accepted, Service: "smtpd", QueueID: "3F2A81C0D4E"}},
		{"accepted by pickup", "pickup", "3F2A81C0D4E: uid=1000 from=<alice>",
			Event{Kind: Accepted, Service: "pickup", QueueID: "3F2A81C0D4E"}},
		{"sent", "smtp", "3F2A81C0D4E: to=<u@remote.example>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 123)",
			Event{Kind: Delivery, Service: "smtp", QueueID: "3F2A81C0D4E", Recipient: "u@remote.example",
				Relay: "127.0.0.1[127.0.0.1]:2525", Status: StatusSent, Delays: [4]float64{0.1, 0.01, 0.5, 0.6}, HasDelays: true,
				Reason: "250 2.0.0 Ok: queued as 123"}},
		{"deferred with orig_to and conn_use", "relay", "3F2A81C0D4E: to=<u@down.test>, orig_to=<a@here>, relay=none, conn_use=2, delay=31, delays=0.01/0/30/0, dsn=4.4.1, status=deferred (connect to mx.down.test[127.0.0.3]:25: Connection refused)",
			Event{Kind: Delivery, Service: "relay", QueueID: "3F2A81C0D4E", Recipient: "u@down.test", Relay: "none",
				Status: StatusDeferred, Delays: [4]float64{0.01, 0, 30, 0}, HasDelays: true,
				Reason: "connect to mx.down.test[127.0.0.3]:25: Connection refused"}},
		{"bounced", "local", "3F2A81C0D4E: to=<nobody@mx.yubin.test>, relay=local, delay=0, delays=0/0/0/0, dsn=5.1.1, status=bounced (unknown user: \"nobody\")",
			Event{Kind: Delivery, Service: "local", QueueID: "3F2A81C0D4E", Recipient: "nobody@mx.yubin.test", Relay: "local",
				Status: StatusBounced, HasDelays: true, Reason: "unknown user: \"nobody\""}},
		{"unknown status", "smtp", "3F2A81C0D4E: to=<u@x>, relay=x, delay=0, delays=0/0/0/0, dsn=2.0.0, status=deliverable (ok)",
			Event{Service: "smtp", QueueID: "3F2A81C0D4E"}},
		{"bad delays are ignored", "smtp", "3F2A81C0D4E: to=<u@x>, relay=x, delay=0, delays=0/NaN/0/0, dsn=2.0.0, status=sent (ok)",
			Event{Kind: Delivery, Service: "smtp", QueueID: "3F2A81C0D4E", Recipient: "u@x", Relay: "x", Status: StatusSent, Reason: "ok"}},
		{"expired", "qmgr", "3F2A81C0D4E: from=<a@b>, status=expired, returned to sender",
			Event{Kind: Expired, Service: "qmgr", QueueID: "3F2A81C0D4E"}},
		{"qmgr active is not counted", "qmgr", "3F2A81C0D4E: from=<a@b>, size=10, nrcpt=1 (queue active)",
			Event{Service: "qmgr", QueueID: "3F2A81C0D4E"}},
		{"relay reject", "smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <u@remote.example>: Relay access denied; from=<a@b> to=<u@remote.example> proto=ESMTP helo=<x>",
			Event{Kind: Rejected, Service: "smtpd", Stage: "RCPT", Code: 554, Class: "relay", Reason: "5.7.1 <u@remote.example>: Relay access denied"}},
		{"unknown user reject", "smtpd", "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <x@y>: Recipient address rejected: User unknown in local recipient table; from=<> to=<x@y> proto=SMTP helo=<h>",
			Event{Kind: Rejected, Service: "smtpd", Stage: "RCPT", Code: 550, Class: "unknown_recipient", Reason: "5.1.1 <x@y>: Recipient address rejected: User unknown in local recipient table"}},
		{"size reject with queue ID", "smtpd", "3F2A81C0D4E: reject: END-OF-MESSAGE from localhost[127.0.0.1]: 552 5.3.4 Message size exceeds fixed limit; from=<a@b> proto=ESMTP helo=<h>",
			Event{Kind: Rejected, Service: "smtpd", QueueID: "3F2A81C0D4E", Stage: "END-OF-MESSAGE", Code: 552, Class: "size", Reason: "5.3.4 Message size exceeds fixed limit"}},
		{"reject with a 2xx code is not a reject", "smtpd", "NOQUEUE: reject: RCPT from x[1.2.3.4]: 250 ok",
			Event{Service: "smtpd"}},
		{"reject without reply", "smtpd", "NOQUEUE: reject: RCPT from x[1.2.3.4]",
			Event{Service: "smtpd"}},
		{"warning", "smtpd", "warning: non-SMTP command from x[1.2.3.4]: GET / HTTP/1.1",
			Event{Service: "smtpd", QueueID: "warning"}},
		{"empty", "smtpd", "", Event{Service: "smtpd"}},
		{"reload", "master", "reload -- version 1.0, configuration /etc/yubin", Event{Kind: Reloaded, Service: "master"}},
		{"failed reload", "master", "warning: reload failed, the running configuration stays in effect: /etc/yubin/main.cf, line 3: bad", Event{Kind: ReloadFailed, Service: "master"}},
		{"reload by another service", "smtpd", "reload -- x", Event{Service: "smtpd"}},
		{"to without end", "smtp", "3F2A81C0D4E: to=<u@x", Event{Service: "smtp", QueueID: "3F2A81C0D4E"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.service, tt.msg)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q, %q)\n got %+v\nwant %+v", tt.service, tt.msg, got, tt.want)
			}
		})
	}
}

func TestRejectClass(t *testing.T) {
	tests := map[string]string{
		"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.example": "dnsbl",
		"<h>: Helo command rejected: need fully-qualified hostname":                        "helo",
		"<s@x>: Sender address rejected: Domain not found":                                 "sender",
		"<r@x>: Recipient address rejected: Access denied":                                 "recipient",
		"Must issue a STARTTLS command first":                                              "tls",
		"<DATA>: Data command rejected: Multi-recipient bounce":                            "data",
		"something new": "other",
	}
	for text, want := range tests {
		if got := RejectClass(text); got != want {
			t.Errorf("RejectClass(%q) = %q, want %q", text, got, want)
		}
	}
	classes := strings.Join(RejectClasses(), ",")
	for _, want := range []string{"relay", "dnsbl", "other"} {
		if !strings.Contains(classes, want) {
			t.Errorf("RejectClasses() = %s, missing %s", classes, want)
		}
	}
}

// FuzzParse checks that no line makes Parse panic and that what it reports
// is consistent with the line.
func FuzzParse(f *testing.F) {
	f.Add("smtp", "3F2A81C0D4E: to=<u@remote.example>, relay=x[1.2.3.4]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)")
	f.Add("smtpd", "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <u@r>: Relay access denied; from=<a> to=<u@r> proto=ESMTP helo=<h>")
	f.Add("smtpd", "connect from x[1.2.3.4]")
	f.Fuzz(func(t *testing.T, service, msg string) {
		ev := Parse(service, msg)
		if ev.Service != service {
			t.Fatalf("service %q became %q", service, ev.Service)
		}
		switch ev.Kind {
		case Delivery:
			if ev.Status != StatusSent && ev.Status != StatusDeferred && ev.Status != StatusBounced {
				t.Fatalf("delivery with status %q", ev.Status)
			}
			for _, d := range ev.Delays {
				if d < 0 || d > 1e9 {
					t.Fatalf("delay %v out of range", d)
				}
			}
		case Rejected:
			if ev.Code < 400 || ev.Code > 599 || ev.Class == "" {
				t.Fatalf("reject with code %d class %q", ev.Code, ev.Class)
			}
		}
		if ev.QueueID != "" && !strings.HasPrefix(msg, ev.QueueID+": ") {
			t.Fatalf("queue ID %q not at the start of %q", ev.QueueID, msg)
		}
	})
}
