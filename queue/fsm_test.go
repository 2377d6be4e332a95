package queue

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var t0 = time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)

func enqueue(id string, rcpts ...string) *Command {
	m := &Message{ID: id, Sender: "s@example.org", Arrival: t0}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{Addr: r})
	}
	return &Command{Type: CmdEnqueue, Message: m, Body: []byte("Subject: " + id + "\r\n\r\nbody\r\n"), Now: t0}
}

// applyEncoded runs c through Encode, Decode and Apply, as the log would.
func applyEncoded(t *testing.T, f *FSM, idx uint64, c *Command) ApplyResult {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	res, ok := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(ApplyResult)
	if !ok {
		t.Fatalf("Apply returned %T", res)
	}
	return res
}

func newFSM(t *testing.T) *FSM {
	f, err := NewFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.bodies.close)
	return f
}

func TestFSMLifecycle(t *testing.T) {
	f := newFSM(t)
	var events []Event
	f.OnEvent(func(e Event) { events = append(events, e) })
	const a, b = "AAAAAAAAAAAA0001", "AAAAAAAAAAAA0002"
	if r := applyEncoded(t, f, 1, enqueue(a, "x@one.example", "y@two.example")); r.Err != nil || r.Count != 1 {
		t.Fatalf("enqueue: %+v", r)
	}
	if r := applyEncoded(t, f, 2, enqueue(a, "x@one.example")); r.Err == nil {
		t.Fatal("duplicate ID accepted")
	}
	applyEncoded(t, f, 3, enqueue(b, "z@two.example"))

	steps := []struct {
		name  string
		cmd   *Command
		count int
		check func(t *testing.T)
	}{
		{"activate", &Command{Type: CmdActivate, IDs: []string{a}, Node: "n1"}, 1, func(t *testing.T) {
			if m, _ := f.Get(a); m.State != Active || m.Node != "n1" {
				t.Fatalf("state %s node %s", m.State, m.Node)
			}
		}},
		{"partial result", &Command{Type: CmdResult, ID: a, Results: []RcptResult{{Index: 0, Status: RcptSent, DSN: "2.0.0"}, {Index: 1, Status: RcptDeferred, DSN: "4.4.1", Reason: "connection refused"}}}, 1, func(t *testing.T) {
			m, ok := f.Get(a)
			if !ok || m.Recipients[0].Status != RcptSent || m.Reason != "connection refused" {
				t.Fatalf("%+v", m)
			}
		}},
		{"defer", &Command{Type: CmdDefer, ID: a, NextAttempt: t0.Add(time.Hour), Reason: "connection refused"}, 1, func(t *testing.T) {
			if m, _ := f.Get(a); m.State != Deferred || !m.NextAttempt.Equal(t0.Add(time.Hour)) || m.Attempts != 1 {
				t.Fatalf("%+v", m)
			}
		}},
		{"flush other site", &Command{Type: CmdFlush, All: true, Site: "one.example", Now: t0}, 0, nil},
		{"flush site", &Command{Type: CmdFlush, All: true, Site: "TWO.example", Now: t0}, 1, func(t *testing.T) {
			if m, _ := f.Get(a); !m.NextAttempt.Equal(t0) {
				t.Fatalf("next %v", m.NextAttempt)
			}
		}},
		{"hold all", &Command{Type: CmdHold, All: true}, 2, nil},
		{"activate held is refused", &Command{Type: CmdActivate, IDs: []string{a}, Node: "n1"}, 0, nil},
		{"release one", &Command{Type: CmdRelease, IDs: []string{b}, Now: t0}, 1, func(t *testing.T) {
			if m, _ := f.Get(b); m.State != Deferred {
				t.Fatalf("state %s", m.State)
			}
		}},
		{"requeue keeps final recipients", &Command{Type: CmdRequeue, IDs: []string{a}}, 1, func(t *testing.T) {
			m, _ := f.Get(a)
			if m.State != Incoming || m.Recipients[0].Status != RcptSent || m.Recipients[1].Status != RcptPending {
				t.Fatalf("%+v", m)
			}
		}},
		{"final result removes", &Command{Type: CmdResult, ID: a, Results: []RcptResult{{Index: 1, Status: RcptBounced, DSN: "5.1.1"}, {Index: 0, Status: RcptDeferred}}}, 1, func(t *testing.T) {
			if _, ok := f.Get(a); ok {
				t.Fatal("message still queued")
			}
			if _, err := f.Body(a); err == nil {
				t.Fatal("body still there")
			}
		}},
		{"delete from wrong queue", &Command{Type: CmdDelete, IDs: []string{b}, Queue: Hold}, 0, nil},
		{"delete", &Command{Type: CmdDelete, IDs: []string{b}, Queue: Deferred}, 1, func(t *testing.T) {
			if f.Len() != 0 {
				t.Fatalf("len %d", f.Len())
			}
		}},
	}
	for i, s := range steps {
		r := applyEncoded(t, f, uint64(10+i), s.cmd)
		if r.Err != nil || r.Count != s.count {
			t.Fatalf("%s: result %+v, want count %d", s.name, r, s.count)
		}
		if s.check != nil {
			t.Run(s.name, s.check)
		}
	}
	if len(events) == 0 || events[0].Type != CmdEnqueue || events[0].IDs[0] != a {
		t.Fatalf("events %+v", events)
	}
}

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	f := newFSM(t)
	ids := []string{"BBBBBBBBBBBB0001", "BBBBBBBBBBBB0002", "BBBBBBBBBBBB0003"}
	for i, id := range ids {
		applyEncoded(t, f, uint64(i+1), enqueue(id, "u@example.com"))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A removal while the snapshot is pending must not break it.
	applyEncoded(t, f, 9, &Command{Type: CmdDelete, IDs: ids[:1]})
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if st := f.LastSnapshot(); st.Bytes != int64(sink.Len()) || st.Messages != 3 || st.At.IsZero() {
		t.Fatalf("snapshot stats %+v, wrote %d bytes", st, sink.Len())
	}
	if _, err := f.Body(ids[0]); err == nil {
		t.Fatal("body of deleted message kept after Release")
	}

	g := newFSM(t)
	applyEncoded(t, g, 1, enqueue("CCCCCCCCCCCC0001", "stale@example.com"))
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("restored %d messages", g.Len())
	}
	if _, ok := g.Get("CCCCCCCCCCCC0001"); ok {
		t.Fatal("restore kept state from before")
	}
	rc, err := g.Body(ids[2])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "Subject: "+ids[2]+"\r\n\r\nbody\r\n" {
		t.Fatalf("body %q", body)
	}

	// A truncated snapshot is refused and leaves the queue as it was.
	h := newFSM(t)
	applyEncoded(t, h, 1, enqueue("DDDDDDDDDDDD0001", "keep@example.com"))
	if err := h.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()[:sink.Len()-5]))); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	if _, ok := h.Get("DDDDDDDDDDDD0001"); !ok {
		t.Fatal("failed restore lost state")
	}
}

func TestDecodeRejectsBadEntries(t *testing.T) {
	good, _ := enqueue("EEEEEEEEEEEE0001", "a@b.example").Encode()
	cases := map[string][]byte{
		"empty":      nil,
		"version":    append([]byte{9}, good[1:]...),
		"unknown":    {1, 42, 2, '{', '}'},
		"long meta":  {1, 1, 0xff, 0xff, 0xff, 0x7f},
		"bad json":   {1, 1, 3, '{', 'x', '}'},
		"no rcpt":    mustEncode(t, &Command{Type: CmdEnqueue, Message: &Message{ID: "EEEEEEEEEEEE0002"}}),
		"bad id":     mustEncode(t, &Command{Type: CmdDelete, IDs: []string{"../../etc"}}),
		"bad status": mustEncode(t, &Command{Type: CmdResult, ID: "EEEEEEEEEEEE0001", Results: []RcptResult{{Status: "lost"}}}),
		"neg index":  mustEncode(t, &Command{Type: CmdResult, ID: "EEEEEEEEEEEE0001", Results: []RcptResult{{Index: -1, Status: RcptSent}}}),
	}
	for name, b := range cases {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if c, err := Decode([]byte{1, byte(IgnoreIfUnknown | 42), 2, '{', '}'}); err != nil || c.Type != IgnoreIfUnknown|42 {
		t.Errorf("ignorable unknown command: %v", err)
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t *testing.T, c *Command) []byte {
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	good, _ := enqueue("FFFFFFFFFFFF0001", "a@b.example").Encode()
	f.Add(good)
	f.Add([]byte{1, 2, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip and be safe to apply.
		again, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		fsm, err := NewFSM(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer fsm.bodies.close()
		fsm.ApplyCommand(c)
	})
}

func TestIDGenerator(t *testing.T) {
	g := NewIDGenerator("mx1")
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := g.Next()
		if err := ValidateID(id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
	if NewIDGenerator("mx1").Next()[8:11] == NewIDGenerator("mx2").Next()[8:11] {
		t.Fatal("node part equal for different nodes")
	}
}

// ApplyBatch must give the same results and state as applying one by one.
func TestApplyBatchMatchesApply(t *testing.T) {
	const a, b = "GGGGGGGGGGGG0001", "GGGGGGGGGGGG0002"
	first := enqueue(a, "x@one.example")
	dup := enqueue(a, "y@one.example")
	dup.Body = []byte("Subject: impostor\r\n\r\n")
	cmds := []*Command{
		first, dup, enqueue(b, "z@two.example"),
		{Type: CmdDelete, IDs: []string{b}},
		{Type: CmdHold, IDs: []string{a}},
	}
	var logs []*raft.Log
	for i, c := range cmds {
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: mustEncode(t, c)})
	}
	logs = append(logs, &raft.Log{Index: 9, Type: raft.LogNoop})

	one, batch := newFSM(t), newFSM(t)
	var want []ApplyResult
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			want = append(want, one.Apply(l).(ApplyResult))
		}
	}
	got := batch.ApplyBatch(logs)
	if len(got) != len(logs) {
		t.Fatalf("%d results for %d logs", len(got), len(logs))
	}
	for i := range want {
		g := got[i].(ApplyResult)
		if (g.Err == nil) != (want[i].Err == nil) || g.Count != want[i].Count {
			t.Errorf("entry %d: batch %+v, one by one %+v", i, g, want[i])
		}
	}
	ma, _ := batch.Get(a)
	if ma.State != Hold || batch.Len() != 1 {
		t.Fatalf("state after batch: %+v, %d messages", ma, batch.Len())
	}
	rc, err := batch.Body(a)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != string(first.Body) {
		t.Fatalf("duplicate overwrote the body: %q", body)
	}
	if _, err := batch.Body(b); err == nil {
		t.Fatal("deleted message's body still there")
	}
}

// A batch's bodies go into the current segment, which outlives its last
// message while it is current and goes once it is ended too.
func TestSegmentLifetime(t *testing.T) {
	f := newFSM(t)
	ids := []string{"HHHHHHHHHHHH0001", "HHHHHHHHHHHH0002", "HHHHHHHHHHHH0003"}
	var logs []*raft.Log
	for i, id := range ids {
		logs = append(logs, &raft.Log{Index: uint64(10 + i), Type: raft.LogCommand, Data: mustEncode(t, enqueue(id, "u@example.com"))})
	}
	f.ApplyBatch(logs)
	segments := func() []string {
		ents, _ := os.ReadDir(f.bodies.dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	if s := segments(); len(s) != 1 || s[0] != "s1" {
		t.Fatalf("segments %v, want [s1]", s)
	}
	for i, id := range ids {
		rc, err := f.Body(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "Subject: "+id+"\r\n\r\nbody\r\n" {
			t.Fatalf("body %d: %q", i, b)
		}
	}
	held, _ := f.Body(ids[2]) // open across the removal
	f.ApplyCommand(&Command{Type: CmdDelete, IDs: ids[:2]})
	if s := segments(); len(s) != 1 {
		t.Fatalf("segment removed while a message still uses it: %v", s)
	}
	f.ApplyCommand(&Command{Type: CmdDelete, IDs: ids[2:]})
	if s := segments(); len(s) != 1 {
		t.Fatalf("current segment removed: %v", s)
	}
	f.bodies.mu.Lock()
	f.bodies.rotateLocked()
	f.bodies.mu.Unlock()
	if s := segments(); len(s) != 0 {
		t.Fatalf("segments left after rotation: %v", s)
	}
	b, err := io.ReadAll(held)
	held.Close()
	if err != nil || !strings.HasSuffix(string(b), "body\r\n") {
		t.Fatalf("an open body became unreadable: %q %v", b, err)
	}
}
