package queue

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// Snapshot format: a magic line, then records. A record is a tag byte:
// 'M' followed by a uvarint-length JSON Message and a uvarint-length body,
// or 'E' ending the stream. Bodies are copied from their files while the
// snapshot is written, never held in memory all at once.
const snapshotMagic = "yubin-queue-snapshot 1\n"

type snapshot struct {
	fsm  *FSM
	msgs []*Message
}

// Snapshot implements raft.FSM. It copies the metadata under the lock and
// pins the body files; Persist streams them afterwards.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	msgs := make([]*Message, 0, len(f.msgs))
	for _, m := range f.msgs {
		msgs = append(msgs, m.clone())
	}
	f.bodies.pin()
	f.mu.RUnlock()
	return &snapshot{fsm: f, msgs: msgs}, nil
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	cw := &countingWriter{w: sink}
	if err := s.write(cw); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist queue snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.fsm.snapMu.Lock()
	s.fsm.snapStats = SnapshotStats{Bytes: cw.n, Duration: time.Since(start), Messages: len(s.msgs), At: time.Now()}
	s.fsm.snapMu.Unlock()
	return nil
}

// SnapshotStats describes the last snapshot this node wrote.
type SnapshotStats struct {
	Bytes    int64
	Duration time.Duration
	Messages int
	At       time.Time // zero: none yet
}

// LastSnapshot reports the last snapshot this node persisted.
func (f *FSM) LastSnapshot() SnapshotStats {
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	return f.snapStats
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	var lenBuf [binary.MaxVarintLen64]byte
	for _, m := range s.msgs {
		meta, err := json.Marshal(m)
		if err != nil {
			return err
		}
		bw.WriteByte('M')
		bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(meta)))])
		bw.Write(meta)
		body, err := s.fsm.bodies.open(m.Stored)
		if err != nil {
			return err
		}
		bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(m.Stored.Len))])
		n, err := io.Copy(bw, body)
		body.Close()
		if err != nil {
			return err
		}
		if n != m.Stored.Len {
			return fmt.Errorf("body %s: segment shorter than recorded", m.ID)
		}
	}
	if err := bw.WriteByte('E'); err != nil {
		return err
	}
	return bw.Flush()
}

func (s *snapshot) Release() { s.fsm.bodies.unpin() }

// Restore implements raft.FSM: it rebuilds the queue from a snapshot into a
// fresh state and swaps it in only when the whole stream was read.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.bodies.dir + ".restore"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("restore queue snapshot: %w", err)
	}
	msgs, err := readSnapshot(bufio.NewReaderSize(rc, 256<<10), tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("restore queue snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	live := map[string]int{}
	for _, m := range msgs {
		live[m.Stored.Seg]++
	}
	if err := f.bodies.replace(tmp, live); err != nil {
		return err
	}
	f.msgs = msgs
	if f.onEvent != nil {
		ids := make([]string, 0, len(msgs))
		for id := range msgs {
			ids = append(ids, id)
		}
		go f.onEvent(Event{Type: CmdEnqueue, IDs: ids})
	}
	return nil
}

func readSnapshot(r *bufio.Reader, dir string) (map[string]*Message, error) {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return nil, errors.New("not a queue snapshot")
	}
	// Every restored body goes into one segment.
	const seg = "r"
	out, err := os.OpenFile(filepath.Join(dir, seg), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 256<<10)
	var off int64
	msgs := make(map[string]*Message)
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("truncated snapshot: %w", err)
		}
		if tag == 'E' {
			if err := w.Flush(); err != nil {
				return nil, err
			}
			return msgs, out.Close()
		}
		if tag != 'M' {
			return nil, fmt.Errorf("bad snapshot record tag %q", tag)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > maxMetaLen {
			return nil, errors.New("bad snapshot metadata length")
		}
		meta := make([]byte, n)
		if _, err := io.ReadFull(r, meta); err != nil {
			return nil, err
		}
		m := new(Message)
		if err := json.Unmarshal(meta, m); err != nil {
			return nil, err
		}
		if err := ValidateID(m.ID); err != nil {
			return nil, err
		}
		size, err := binary.ReadUvarint(r)
		if err != nil || size > 1<<40 {
			return nil, errors.New("bad snapshot body length")
		}
		if _, err := io.CopyN(w, r, int64(size)); err != nil {
			return nil, fmt.Errorf("body %s: %w", m.ID, err)
		}
		m.Stored = BodyRef{Seg: seg, Off: off, Len: int64(size)}
		off += int64(size)
		msgs[m.ID] = m
	}
}
