package cluster

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/yubin-mta/yubin/queue"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }

func newTestFSM(t *testing.T) (*appliedFSM, *queue.FSM) {
	t.Helper()
	q, err := queue.NewFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newAppliedFSM(q), q
}

func applyLog(t *testing.T, f *appliedFSM, index uint64, c *queue.Command) {
	t.Helper()
	res := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: mustEncode(t, c)})
	if r, ok := res.(queue.ApplyResult); !ok || r.Err != nil {
		t.Fatalf("apply at %d: %#v", index, res)
	}
}

func TestAppliedIndexSurvivesSnapshot(t *testing.T) {
	f, _ := newTestFSM(t)
	applyLog(t, f, 3, enqueueCmd(testID(1)))
	applyLog(t, f, 7, enqueueCmd(testID(2)))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	applyLog(t, f, 9, enqueueCmd(testID(3))) // after the snapshot: not in it
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v closed=%v", err, sink.closed)
	}
	snap.Release()

	g, q := newTestFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if idx, _ := g.applied(); idx != 7 {
		t.Fatalf("restored index %d, want 7", idx)
	}
	if _, ok := q.Get(testID(2)); !ok {
		t.Fatal("restored queue lacks message 2")
	}
	if _, ok := q.Get(testID(3)); ok {
		t.Fatal("restored queue has a message from after the snapshot")
	}

	// Not a cluster snapshot, or a cut one: refused, state unchanged.
	for _, bad := range [][]byte{nil, []byte("yubin-queue-snapshot 1\n"), sink.Bytes()[:len(snapshotMagic)+3]} {
		if err := g.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("restore of %q accepted", bad)
		}
	}
	if idx, _ := g.applied(); idx != 7 {
		t.Fatalf("index after refused restores %d", idx)
	}
}

func TestWaitApplied(t *testing.T) {
	f, _ := newTestFSM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.wait(ctx, 1); err == nil {
		t.Fatal("wait for an index never applied returned nil")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- f.wait(ctx, 5)
	}()
	applyLog(t, f, 4, enqueueCmd(testID(1)))
	select {
	case err := <-done:
		t.Fatalf("wait for 5 returned at index 4: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	applyLog(t, f, 5, enqueueCmd(testID(2)))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
