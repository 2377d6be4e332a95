package showq

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

var arrival = time.Date(2026, 11, 24, 5, 17, 55, 0, time.UTC)

func sample() []queue.Message {
	return []queue.Message{
		{ID: "3F2A41A0C4B", Sender: "alerts@edge.example", Size: 1274, Arrival: arrival, State: queue.Deferred,
			Recipients: []queue.Recipient{
				{Addr: "oncall@example.net", Status: queue.RcptDeferred, Reason: "connect to mx1.example.net[192.0.2.25]:25: Connection timed out"},
				{Addr: "done@example.net", Status: queue.RcptSent},
			}},
		{ID: "8C2F41A0D91", Sender: "", Size: 2148, Arrival: arrival, State: queue.Active, Node: "mx2",
			Recipients: []queue.Recipient{{Addr: "sre@example.net"}}},
		{ID: "91AB41A0E02", Sender: "cron@edge.example", Size: 1902, Arrival: arrival, State: queue.Hold,
			Recipients: []queue.Recipient{{Addr: "sre@example.net"}}},
	}
}

func TestMailq(t *testing.T) {
	var b bytes.Buffer
	if err := Mailq(&b, sample(), Options{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	want := `-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
3F2A41A0C4B     1274 Tue Nov 24 05:17:55  alerts@edge.example
(connect to mx1.example.net[192.0.2.25]:25: Connection timed out)
                                         oncall@example.net

8C2F41A0D91*    2148 Tue Nov 24 05:17:55  MAILER-DAEMON
                                         sre@example.net

91AB41A0E02!    1902 Tue Nov 24 05:17:55  cron@edge.example
                                         sre@example.net

-- 5 Kbytes in 3 Requests.
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	Mailq(&b, nil, Options{})
	if b.String() != "Mail queue is empty\n" {
		t.Fatalf("empty: %q", b.String())
	}
	b.Reset()
	Mailq(&b, sample()[1:2], Options{ShowNode: true, Location: time.UTC})
	if !strings.Contains(b.String(), "(delivering on mx2)") || !strings.HasSuffix(b.String(), "in 1 Request.\n") {
		t.Fatalf("node/singular: %q", b.String())
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, sample()[:1]); err != nil {
		t.Fatal(err)
	}
	want := `{"queue_name":"deferred","queue_id":"3F2A41A0C4B","arrival_time":1795497475,"message_size":1274,"forced_expire":false,"sender":"alerts@edge.example","recipients":[{"address":"oncall@example.net","delay_reason":"connect to mx1.example.net[192.0.2.25]:25: Connection timed out"}]}` + "\n"
	if b.String() != want {
		t.Fatalf("got %s", b.String())
	}
}

func TestQshape(t *testing.T) {
	msgs := sample()
	msgs[0].Arrival = arrival.Add(-time.Hour) // 60+ minutes old
	var b bytes.Buffer
	if err := Qshape(&b, msgs, QshapeOptions{Now: arrival.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	want := `            T 5 10 20 40 80 160 320 640 1280 1280+
      TOTAL 3 2  0  0  0  1   0   0   0    0     0
example.net 3 2  0  0  0  1   0   0   0    0     0
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
