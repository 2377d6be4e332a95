package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// appliedFSM wraps the queue FSM to know which log index the FSM has really
// consumed. raft.AppliedIndex only says what was handed to the FSM
// goroutine, and a follower has no Barrier; WaitApplied needs the truth.
//
// Snapshots carry the index in a small header so a node restored from a
// snapshot knows it too.
type appliedFSM struct {
	inner raft.FSM

	mu      sync.Mutex
	index   uint64        // last LogCommand index applied (or restored)
	advance chan struct{} // closed and replaced when index grows
}

func newAppliedFSM(inner raft.FSM) *appliedFSM {
	return &appliedFSM{inner: inner, advance: make(chan struct{})}
}

func (f *appliedFSM) Apply(l *raft.Log) any {
	res := f.inner.Apply(l)
	f.set(l.Index)
	return res
}

// ApplyBatch implements raft.BatchingFSM, so the queue gets every entry
// committed together at once (it writes their bodies in parallel).
func (f *appliedFSM) ApplyBatch(logs []*raft.Log) []any {
	var res []any
	if b, ok := f.inner.(raft.BatchingFSM); ok {
		res = b.ApplyBatch(logs)
	} else {
		res = make([]any, len(logs))
		for i, l := range logs {
			res[i] = f.inner.Apply(l)
		}
	}
	if len(logs) > 0 {
		f.set(logs[len(logs)-1].Index)
	}
	return res
}

func (f *appliedFSM) set(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = index // Restore may move it backwards: the state did too
	close(f.advance)
	f.advance = make(chan struct{})
}

// applied returns the index and a channel closed when it next changes.
func (f *appliedFSM) applied() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index, f.advance
}

// wait blocks until the FSM has applied index or ctx ends.
func (f *appliedFSM) wait(ctx context.Context, index uint64) error {
	for {
		cur, advanced := f.applied()
		if cur >= index {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return fmt.Errorf("cluster: local state at log index %d, waiting for %d: %w", cur, index, ctx.Err())
		}
	}
}

// snapshotMagic starts the header the cluster puts before the queue's own
// snapshot: magic, then the applied index as 8 bytes big-endian.
const snapshotMagic = "yubin-cluster-snapshot 1\n"

func (f *appliedFSM) Snapshot() (raft.FSMSnapshot, error) {
	// Snapshot runs on the FSM goroutine, between Applies: the index matches
	// the state the inner snapshot captures.
	index, _ := f.applied()
	s, err := f.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &indexedSnapshot{inner: s, index: index}, nil
}

func (f *appliedFSM) Restore(rc io.ReadCloser) error {
	br := bufio.NewReader(rc)
	hdr := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(br, hdr); err != nil {
		rc.Close()
		return fmt.Errorf("cluster: snapshot header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		rc.Close()
		return errors.New("cluster: snapshot header: not a yubin cluster snapshot")
	}
	index := binary.BigEndian.Uint64(hdr[len(snapshotMagic):])
	if err := f.inner.Restore(readCloser{Reader: br, Closer: rc}); err != nil {
		return err
	}
	f.set(index)
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type indexedSnapshot struct {
	inner raft.FSMSnapshot
	index uint64
}

func (s *indexedSnapshot) Persist(sink raft.SnapshotSink) error {
	hdr := binary.BigEndian.AppendUint64([]byte(snapshotMagic), s.index)
	if _, err := sink.Write(hdr); err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: write snapshot header: %w", err)
	}
	return s.inner.Persist(sink)
}

func (s *indexedSnapshot) Release() { s.inner.Release() }
