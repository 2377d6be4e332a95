package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// BodyRef locates a message body inside a segment file of the body store.
type BodyRef struct {
	Seg string `json:"seg"`
	Off int64  `json:"off"`
	Len int64  `json:"len"`
}

// bodyStore keeps message bodies in segment files: the bodies of all the
// messages one Raft batch adds are written one after the other into one new
// file. Creating files is the expensive part of accepting mail; a segment
// per batch creates far fewer than a file per message. A segment is deleted
// when its last message leaves the queue; while a snapshot is being
// persisted, deletions wait so the snapshot can read every body it lists.
//
// Files are written without fsync: the Raft log and snapshots hold the
// durable copy, and the store is rebuilt from them at every start.
type bodyStore struct {
	dir string

	mu      sync.Mutex
	live    map[string]int // segment -> bodies still queued
	pins    int
	pending []string // segments to delete when unpinned
	next    uint64   // names for segments written outside a batch
}

func openBodyStore(dir string) (*bodyStore, error) {
	bs := &bodyStore{dir: filepath.Join(dir, "bodies"), live: map[string]int{}}
	// Whatever is here is rebuilt from the snapshot and the log.
	if err := os.RemoveAll(bs.dir); err != nil {
		return nil, fmt.Errorf("queue body directory: %w", err)
	}
	if err := os.MkdirAll(bs.dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue body directory: %w", err)
	}
	return bs, nil
}

func (bs *bodyStore) path(seg string) string { return filepath.Join(bs.dir, seg) }

// writeSegment writes bodies into a new segment file named seg and returns
// where each one is. An existing file of that name (a replayed log entry)
// is replaced.
func (bs *bodyStore) writeSegment(seg string, bodies [][]byte) ([]BodyRef, error) {
	f, err := os.OpenFile(bs.path(seg), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write queue bodies: %w", err)
	}
	refs := make([]BodyRef, len(bodies))
	var off int64
	for i, b := range bodies {
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, fmt.Errorf("write queue bodies: %w", err)
		}
		refs[i] = BodyRef{Seg: seg, Off: off, Len: int64(len(b))}
		off += int64(len(b))
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write queue bodies: %w", err)
	}
	bs.mu.Lock()
	bs.live[seg] += len(bodies)
	bs.mu.Unlock()
	return refs, nil
}

// write stores one body in a segment of its own (Apply outside a batch).
func (bs *bodyStore) write(body []byte) (BodyRef, error) {
	bs.mu.Lock()
	bs.next++
	seg := "c" + strconv.FormatUint(bs.next, 10)
	bs.mu.Unlock()
	refs, err := bs.writeSegment(seg, [][]byte{body})
	if err != nil {
		return BodyRef{}, err
	}
	return refs[0], nil
}

// Body is an open message body. It can be read as a stream and at any
// offset, and stays readable after the message left the queue.
type Body struct {
	*io.SectionReader
	f *os.File
}

// Close closes the segment file.
func (b *Body) Close() error { return b.f.Close() }

func (bs *bodyStore) open(ref BodyRef) (*Body, error) {
	f, err := os.Open(bs.path(ref.Seg))
	if err != nil {
		return nil, fmt.Errorf("open queue body: %w", err)
	}
	return &Body{SectionReader: io.NewSectionReader(f, ref.Off, ref.Len), f: f}, nil
}

// release drops one body; the segment goes when its last body does.
func (bs *bodyStore) release(ref BodyRef) {
	if ref.Seg == "" {
		return
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.live[ref.Seg]--
	if bs.live[ref.Seg] > 0 {
		return
	}
	delete(bs.live, ref.Seg)
	if bs.pins > 0 {
		bs.pending = append(bs.pending, ref.Seg)
		return
	}
	_ = os.Remove(bs.path(ref.Seg)) // a leftover file is harmless: the store is rebuilt at start
}

func (bs *bodyStore) pin() {
	bs.mu.Lock()
	bs.pins++
	bs.mu.Unlock()
}

func (bs *bodyStore) unpin() {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.pins--
	if bs.pins > 0 {
		return
	}
	for _, seg := range bs.pending {
		if bs.live[seg] == 0 {
			_ = os.Remove(bs.path(seg))
		}
	}
	bs.pending = nil
}

// replace swaps in a directory of restored bodies for the current one.
func (bs *bodyStore) replace(restored string, live map[string]int) error {
	old := bs.dir + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(bs.dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	if err := os.Rename(restored, bs.dir); err != nil {
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	bs.mu.Lock()
	bs.live, bs.pending = live, nil
	bs.mu.Unlock()
	return os.RemoveAll(old)
}
