package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

func newBodyStore(t *testing.T, limit int64) *bodyStore {
	t.Helper()
	bs, err := openBodyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bs.limit = limit
	t.Cleanup(bs.close)
	return bs
}

// files lists the body directory.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func readAll(bs *bodyStore, ref BodyRef) ([]byte, error) {
	b, err := bs.open(ref)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(b)
}

func readRef(t *testing.T, bs *bodyStore, ref BodyRef) []byte {
	t.Helper()
	got, err := readAll(bs, ref)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func body(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

func mustWrite(t *testing.T, bs *bodyStore, b []byte) BodyRef {
	t.Helper()
	ref, err := bs.write(b)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func assertFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := files(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("segment files %v, want %v", got, want)
	}
}

// enqueueLogs returns log entries enqueueing one message per ID, from index.
func enqueueLogs(t *testing.T, index uint64, ids ...string) []*raft.Log {
	var logs []*raft.Log
	for i, id := range ids {
		logs = append(logs, &raft.Log{Index: index + uint64(i), Type: raft.LogCommand, Data: mustEncode(t, enqueue(id, "u@example.com"))})
	}
	return logs
}

func checkBody(t *testing.T, f *FSM, id string) {
	t.Helper()
	rc, err := f.Body(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if want := "Subject: " + id + "\r\n\r\nbody\r\n"; string(b) != want {
		t.Fatalf("body of %s: %q, want %q", id, b, want)
	}
}

// Successive batches and single writes append to one open segment instead
// of creating a file each.
func TestBatchesShareSegment(t *testing.T) {
	f := newFSM(t)
	var ids []string
	idx := uint64(1)
	for b := 0; b < 5; b++ {
		batch := []string{fmt.Sprintf("JJJJJJJJJJJJ%02d01", b), fmt.Sprintf("JJJJJJJJJJJJ%02d02", b)}
		for i, r := range f.ApplyBatch(enqueueLogs(t, idx, batch...)) {
			if res := r.(ApplyResult); res.Err != nil || res.Count != 1 {
				t.Fatalf("batch %d entry %d: %+v", b, i, res)
			}
		}
		idx += 2
		ids = append(ids, batch...)
	}
	single := "JJJJJJJJJJJJ9999"
	if r := applyEncoded(t, f, idx, enqueue(single, "u@example.com")); r.Err != nil {
		t.Fatal(r.Err)
	}
	ids = append(ids, single)
	assertFiles(t, f.bodies.dir, "s1")
	var off int64
	for _, id := range ids {
		m, _ := f.Get(id)
		if m.Stored.Seg != "s1" || m.Stored.Off != off {
			t.Fatalf("%s stored at %+v, want s1 offset %d", id, m.Stored, off)
		}
		off += m.Stored.Len
		checkBody(t, f, id)
	}
}

// A segment ends once it reached the limit; a body is never split, so one
// larger than the rest of the segment ends it.
func TestSegmentRotation(t *testing.T) {
	type want struct {
		seg string
		off int64
	}
	cases := []struct {
		name  string
		sizes []int
		want  []want
		files []string
		cur   string
	}{
		{"below limit", []int{10, 20, 30}, []want{{"s1", 0}, {"s1", 10}, {"s1", 30}}, []string{"s1"}, "s1"},
		{"exactly full", []int{60, 40, 10}, []want{{"s1", 0}, {"s1", 60}, {"s2", 0}}, []string{"s1", "s2"}, "s2"},
		{"larger than the rest", []int{60, 50, 10}, []want{{"s1", 0}, {"s1", 60}, {"s2", 0}}, []string{"s1", "s2"}, "s2"},
		{"larger than the limit", []int{10, 500, 1, 200}, []want{{"s1", 0}, {"s1", 10}, {"s2", 0}, {"s2", 1}}, []string{"s1", "s2"}, ""},
		{"empty bodies", []int{0, 100, 0}, []want{{"s1", 0}, {"s1", 0}, {"s2", 0}}, []string{"s1", "s2"}, "s2"},
	}
	for _, c := range cases {
		for _, mode := range []string{"one batch", "single writes"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				bs := newBodyStore(t, 100)
				bodies := make([][]byte, len(c.sizes))
				for i, n := range c.sizes {
					bodies[i] = body(n, byte('a'+i))
				}
				var refs []BodyRef
				if mode == "one batch" {
					var err error
					if refs, err = bs.writeBodies(bodies); err != nil {
						t.Fatal(err)
					}
				} else {
					for _, b := range bodies {
						refs = append(refs, mustWrite(t, bs, b))
					}
				}
				size := map[string]int64{}
				for i, r := range refs {
					if r.Seg != c.want[i].seg || r.Off != c.want[i].off || r.Len != int64(c.sizes[i]) {
						t.Errorf("body %d at %+v, want %+v", i, r, c.want[i])
					}
					if got := readRef(t, bs, r); !bytes.Equal(got, bodies[i]) {
						t.Errorf("body %d read back %d bytes, wrote %d", i, len(got), len(bodies[i]))
					}
					size[r.Seg] += r.Len
				}
				assertFiles(t, bs.dir, c.files...)
				for seg, n := range size {
					st, err := os.Stat(bs.path(seg))
					if err != nil || st.Size() != n {
						t.Errorf("segment %s: %v, want %d bytes", seg, err, n)
					}
				}
				if bs.curSeg != c.cur {
					t.Errorf("current segment %q, want %q", bs.curSeg, c.cur)
				}
			})
		}
	}
}

// A segment goes when its last body is released and it is not current.
func TestSegmentDeletion(t *testing.T) {
	bs := newBodyStore(t, 100)
	a := mustWrite(t, bs, body(60, 'a'))
	bs.release(a)
	assertFiles(t, bs.dir, "s1") // empty, but still current

	b := mustWrite(t, bs, body(50, 'b')) // fills s1
	if b.Seg != "s1" || b.Off != 60 {
		t.Fatalf("b at %+v", b)
	}
	c := mustWrite(t, bs, body(10, 'c'))
	assertFiles(t, bs.dir, "s1", "s2")
	bs.release(b)
	assertFiles(t, bs.dir, "s2")

	// The current segment loses its last body, then is ended: it goes then.
	bs.release(c)
	assertFiles(t, bs.dir, "s2")
	d := mustWrite(t, bs, body(100, 'd'))
	if d.Seg != "s2" {
		t.Fatalf("d at %+v", d)
	}
	assertFiles(t, bs.dir, "s2")
	bs.release(d)
	assertFiles(t, bs.dir)
	if len(bs.live) != 0 {
		t.Fatalf("live counts left: %v", bs.live)
	}
}

// While pinned, no segment is deleted; unpinning the last pin deletes the
// ones that became unused meanwhile, and only those.
func TestPinnedDeletion(t *testing.T) {
	bs := newBodyStore(t, 100)
	keep := mustWrite(t, bs, body(100, 'k')) // s1, ended and kept
	bs.pin()
	bs.pin()
	a := mustWrite(t, bs, body(100, 'a')) // s2, ended
	bs.release(a)
	b := mustWrite(t, bs, body(10, 'b')) // s3, current
	bs.release(b)
	c := mustWrite(t, bs, body(200, 'c')) // ends s3 while pinned
	bs.release(c)
	assertFiles(t, bs.dir, "s1", "s2", "s3")
	for _, r := range []BodyRef{a, b, c} {
		if got := readRef(t, bs, r); len(got) != int(r.Len) {
			t.Fatalf("pinned body %+v unreadable: %d bytes", r, len(got))
		}
	}
	bs.unpin()
	assertFiles(t, bs.dir, "s1", "s2", "s3")
	bs.unpin()
	assertFiles(t, bs.dir, "s1")
	if got := readRef(t, bs, keep); !bytes.Equal(got, body(100, 'k')) {
		t.Fatal("kept body changed")
	}
}

// Many appends across rotations read back byte for byte, also while the
// writer goes on and while readers run concurrently.
func TestManyAppendsByteExact(t *testing.T) {
	bs := newBodyStore(t, 4096)
	rng := rand.New(rand.NewSource(1))
	type stored struct {
		ref  BodyRef
		body []byte
	}
	published := make(chan stored, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var readErr error
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range published { // drained to the end: the writer must not block
				got, err := readAll(bs, s.ref)
				if err == nil && !bytes.Equal(got, s.body) {
					err = fmt.Errorf("body at %+v: read %d bytes, wrote %d", s.ref, len(got), len(s.body))
				}
				if err != nil {
					mu.Lock()
					readErr = err
					mu.Unlock()
				}
			}
		}()
	}
	var all []stored
	for batch := 0; batch < 300; batch++ {
		bodies := make([][]byte, 1+rng.Intn(8))
		for i := range bodies {
			bodies[i] = make([]byte, rng.Intn(3000))
			rng.Read(bodies[i])
		}
		refs, err := bs.writeBodies(bodies)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range refs {
			s := stored{r, bodies[i]}
			all = append(all, s)
			published <- s
		}
	}
	close(published)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}

	// Release a random half: exactly the segments still used, and the
	// current one, are left.
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	gone, kept := all[:len(all)/2], all[len(all)/2:]
	for _, s := range gone {
		bs.release(s.ref)
	}
	want := map[string]bool{bs.curSeg: true}
	for _, s := range kept {
		want[s.ref.Seg] = true
	}
	var segs []string
	for seg := range want {
		segs = append(segs, seg)
	}
	sort.Strings(segs)
	assertFiles(t, bs.dir, segs...)
	for _, s := range kept {
		if got := readRef(t, bs, s.ref); !bytes.Equal(got, s.body) {
			t.Fatalf("body at %+v changed", s.ref)
		}
	}
}

// A failed write stores none of the call's bodies, keeps what was stored
// before, and the next write starts a new segment.
func TestWriteErrorRecovers(t *testing.T) {
	t.Run("new segment fails mid-batch", func(t *testing.T) {
		f := newFSM(t)
		f.bodies.limit = 100
		// A directory where the next segment will be makes creating it fail.
		if err := os.Mkdir(f.bodies.path("s2"), 0o700); err != nil {
			t.Fatal(err)
		}
		logs := enqueueLogs(t, 1, "KKKKKKKKKKKK0001", "KKKKKKKKKKKK0002", "KKKKKKKKKKKK0003", "KKKKKKKKKKKK0004")
		big := enqueue("KKKKKKKKKKKK0002", "u@example.com")
		big.Body = body(200, 'x') // ends s1, so the next body needs s2
		logs[1].Data = mustEncode(t, big)
		for i, r := range f.ApplyBatch(logs) {
			if res := r.(ApplyResult); !errors.Is(res.Err, fs.ErrExist) {
				t.Fatalf("entry %d: %+v, want the creation error", i, res)
			}
		}
		if f.Len() != 0 {
			t.Fatalf("%d messages queued by a failed batch", f.Len())
		}
		assertFiles(t, f.bodies.dir, "s2") // s1 went: nothing in it is queued
		if len(f.bodies.live) != 0 {
			t.Fatalf("live counts %v", f.bodies.live)
		}
		f.ApplyBatch(enqueueLogs(t, 5, "KKKKKKKKKKKK0005", "KKKKKKKKKKKK0006"))
		checkBody(t, f, "KKKKKKKKKKKK0005")
		checkBody(t, f, "KKKKKKKKKKKK0006")
		assertFiles(t, f.bodies.dir, "s2", "s3")
	})
	t.Run("write to current segment fails", func(t *testing.T) {
		bs := newBodyStore(t, 100)
		a := mustWrite(t, bs, body(10, 'a'))
		bs.cur.Close() // the next write fails
		if _, err := bs.writeBodies([][]byte{body(5, 'b'), body(5, 'c')}); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("write on a closed file: %v", err)
		}
		if bs.live["s1"] != 1 || bs.curSeg != "" {
			t.Fatalf("after the error: live %v, current %q", bs.live, bs.curSeg)
		}
		d := mustWrite(t, bs, body(10, 'd'))
		if d.Seg != "s2" {
			t.Fatalf("write after the error went to %+v", d)
		}
		if got := readRef(t, bs, a); !bytes.Equal(got, body(10, 'a')) {
			t.Fatalf("earlier body %q", got)
		}
		bs.release(a)
		assertFiles(t, bs.dir, "s2")
	})
	t.Run("unused current segment goes with the error", func(t *testing.T) {
		bs := newBodyStore(t, 100)
		bs.release(mustWrite(t, bs, body(10, 'a')))
		assertFiles(t, bs.dir, "s1")
		bs.cur.Close()
		if _, err := bs.write(body(5, 'b')); err == nil {
			t.Fatal("write on a closed file succeeded")
		}
		assertFiles(t, bs.dir)
	})
	t.Run("closed store", func(t *testing.T) {
		bs := newBodyStore(t, 100)
		mustWrite(t, bs, body(10, 'a'))
		bs.close()
		if _, err := bs.write(body(1, 'b')); err == nil {
			t.Fatal("write after close succeeded")
		}
	})
}

// After a restore the store appends to a fresh segment in the restored
// directory, and the restored state snapshots again.
func TestRestoreThenAppend(t *testing.T) {
	f := newFSM(t)
	f.bodies.limit = 64 // a few bodies per segment
	var ids []string
	for b := 0; b < 4; b++ {
		batch := []string{fmt.Sprintf("LLLLLLLLLLLL%02d01", b), fmt.Sprintf("LLLLLLLLLLLL%02d02", b)}
		f.ApplyBatch(enqueueLogs(t, uint64(1+2*b), batch...))
		ids = append(ids, batch...)
	}
	if n := len(files(t, f.bodies.dir)); n < 3 {
		t.Fatalf("only %d segments; the test wants several", n)
	}
	snapshot := func(f *FSM) []byte {
		t.Helper()
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var sink bufSink
		if err := snap.Persist(&sink); err != nil {
			t.Fatal(err)
		}
		snap.Release()
		return sink.Bytes()
	}
	data := snapshot(f)

	g := newFSM(t)
	g.ApplyBatch(enqueueLogs(t, 1, "MMMMMMMMMMMM0001")) // g has a current segment
	old := g.bodies.cur
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if g.bodies.cur != nil {
		t.Fatal("the current segment of the replaced directory is still open")
	}
	if _, err := old.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("old segment not closed: %v", err)
	}
	assertFiles(t, g.bodies.dir, "r")

	more := []string{"LLLLLLLLLLLL9901", "LLLLLLLLLLLL9902"}
	g.ApplyBatch(enqueueLogs(t, 20, more...))
	m, _ := g.Get(more[0])
	if m.Stored.Seg == "r" || m.Stored.Seg == "s1" {
		t.Fatalf("new body in segment %q after restore", m.Stored.Seg)
	}
	if _, err := os.Stat(g.bodies.path(m.Stored.Seg)); err != nil {
		t.Fatalf("new segment not in the restored directory: %v", err)
	}
	ids = append(ids, more...)
	for _, id := range ids {
		checkBody(t, g, id)
	}

	// The restored segment goes with its last message.
	g.ApplyCommand(&Command{Type: CmdDelete, IDs: ids[:len(ids)-2]})
	for _, name := range files(t, g.bodies.dir) {
		if name == "r" {
			t.Fatal("restored segment kept after its messages left")
		}
	}

	h := newFSM(t)
	if err := h.Restore(io.NopCloser(bytes.NewReader(snapshot(g)))); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 2 {
		t.Fatalf("second restore: %d messages", h.Len())
	}
	for _, id := range more {
		checkBody(t, h, id)
	}
}
