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

// segmentLimit is the size at which the body store starts a new segment.
// Larger segments create fewer files, but a segment stays on disk as long
// as any body in it is queued, so one long-deferred message can hold up to
// this much space.
const segmentLimit = 4 << 20

// bodyStore keeps message bodies in segment files. Bodies are appended to
// the current segment, which stays open, until it reaches its size limit
// (a body larger than the rest is written whole and ends the segment); then
// the next write starts a new one. Every batch used to create a file of its
// own, and with small batches (followers, few concurrent clients) creating
// inodes took over a tenth of the CPU.
//
// A segment is deleted when no queued body is in it any more and it is no
// longer the current one; while a snapshot is being persisted, deletions
// wait so the snapshot can read every body it lists. Segments are named
// "s<n>" from a counter that lives as long as the process, so names never
// repeat and never collide with the segment "r" that Restore writes.
//
// Files are written without fsync: the Raft log and snapshots hold the
// durable copy, and the store is rebuilt from them at every start. Writes go
// straight to the file (no user-space buffer), so a body can be read as soon
// as the write that stored it returned.
type bodyStore struct {
	dir   string
	limit int64 // segment size that ends the current segment (tests lower it)

	// mu guards everything below. Writes hold it too: they come from the
	// one FSM goroutine, and readers never need it.
	mu      sync.Mutex
	live    map[string]int // segment -> bodies still queued
	pins    int
	pending []string // segments to delete when unpinned
	next    uint64   // last segment number used
	cur     *os.File // current segment, nil until the next write starts one
	curSeg  string
	curSize int64
	closed  bool
}

func openBodyStore(dir string) (*bodyStore, error) {
	bs := &bodyStore{dir: filepath.Join(dir, "bodies"), limit: segmentLimit, live: map[string]int{}}
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

// writeBodies appends bodies to the store and returns where each one is.
// They may span a rotation. On error none of them is stored.
func (bs *bodyStore) writeBodies(bodies [][]byte) ([]BodyRef, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	refs := make([]BodyRef, 0, len(bodies))
	for _, b := range bodies {
		ref, err := bs.appendLocked(b)
		if err != nil {
			// Forget the bodies already written, and leave a segment that
			// may end in a partial body: the next write starts a new one.
			for _, r := range refs {
				bs.releaseLocked(r.Seg)
			}
			bs.rotateLocked()
			return nil, fmt.Errorf("write queue bodies: %w", err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// write stores one body (Apply outside a batch).
func (bs *bodyStore) write(body []byte) (BodyRef, error) {
	refs, err := bs.writeBodies([][]byte{body})
	if err != nil {
		return BodyRef{}, err
	}
	return refs[0], nil
}

// appendLocked writes b at the end of the current segment, starting one if
// there is none, and ends the segment once it reached the limit.
func (bs *bodyStore) appendLocked(b []byte) (BodyRef, error) {
	if bs.closed {
		return BodyRef{}, errors.New("body store closed")
	}
	if bs.cur == nil {
		bs.next++
		seg := "s" + strconv.FormatUint(bs.next, 10)
		// O_EXCL: a name is never reused, so an existing file is a bug
		// worth an error rather than an overwrite.
		f, err := os.OpenFile(bs.path(seg), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return BodyRef{}, fmt.Errorf("new segment: %w", err)
		}
		bs.cur, bs.curSeg, bs.curSize = f, seg, 0
	}
	if _, err := bs.cur.Write(b); err != nil {
		return BodyRef{}, fmt.Errorf("segment %s: %w", bs.curSeg, err)
	}
	ref := BodyRef{Seg: bs.curSeg, Off: bs.curSize, Len: int64(len(b))}
	bs.curSize += int64(len(b))
	bs.live[ref.Seg]++
	if bs.curSize >= bs.limit {
		bs.rotateLocked()
	}
	return ref, nil
}

// rotateLocked ends the current segment; the next write starts a new one.
func (bs *bodyStore) rotateLocked() {
	if bs.cur == nil {
		return
	}
	// The data went to the page cache with write(2); closing a local file
	// reports nothing about it, and there is no fsync to check.
	_ = bs.cur.Close()
	seg := bs.curSeg
	bs.cur, bs.curSeg, bs.curSize = nil, "", 0
	bs.dropLocked(seg) // all its bodies may have gone already
}

// close ends the current segment; later writes fail. The FSM has no Close
// (the process exit closes the file), so only tests call it.
func (bs *bodyStore) close() {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.rotateLocked()
	bs.closed = true
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

// release drops one body; the segment goes when its last body does,
// unless it is still the current one.
func (bs *bodyStore) release(ref BodyRef) {
	if ref.Seg == "" {
		return
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.releaseLocked(ref.Seg)
}

func (bs *bodyStore) releaseLocked(seg string) {
	bs.live[seg]--
	bs.dropLocked(seg)
}

// dropLocked deletes seg if no queued body is in it and it is not the
// current segment, or marks it for deletion while a snapshot pins the store.
func (bs *bodyStore) dropLocked(seg string) {
	if bs.live[seg] > 0 || seg == bs.curSeg {
		return
	}
	delete(bs.live, seg)
	if bs.pins > 0 {
		bs.pending = append(bs.pending, seg)
		return
	}
	_ = os.Remove(bs.path(seg)) // a leftover file is harmless: the store is rebuilt at start
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
	// A pending segment was not current when it was dropped, and names are
	// never reused, so it cannot have gained bodies since.
	for _, seg := range bs.pending {
		if bs.live[seg] == 0 {
			_ = os.Remove(bs.path(seg))
		}
	}
	bs.pending = nil
}

// replace swaps in a directory of restored bodies for the current one. The
// current segment is in the old directory, so it is closed first: the next
// write starts a fresh segment in the new one.
func (bs *bodyStore) replace(restored string, live map[string]int) error {
	old := bs.dir + ".old"
	_ = os.RemoveAll(old)
	bs.mu.Lock()
	if bs.cur != nil {
		_ = bs.cur.Close()
		bs.cur, bs.curSeg, bs.curSize = nil, "", 0
	}
	err := os.Rename(bs.dir, old)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		bs.mu.Unlock()
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	if err := os.Rename(restored, bs.dir); err != nil {
		_ = os.Rename(old, bs.dir) // keep the old state usable
		bs.mu.Unlock()
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	bs.live, bs.pending = live, nil
	bs.mu.Unlock()
	// The swap is done, so this must not fail the restore; a leftover
	// directory goes with the next restore or start.
	_ = os.RemoveAll(old)
	return nil
}
