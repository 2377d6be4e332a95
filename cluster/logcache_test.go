package cluster

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// countingStore counts the reads that reach the real store.
type countingStore struct {
	*raft.InmemStore
	reads int
}

func (s *countingStore) GetLog(index uint64, out *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(index, out)
}

func TestLogCache(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(store)
	small := func(i uint64) *raft.Log { return &raft.Log{Index: i, Term: 1, Data: []byte{byte(i)}} }
	big := &raft.Log{Index: 3, Term: 1, Data: bytes.Repeat([]byte("x"), logCacheMaxLen+1)}
	if err := c.StoreLogs([]*raft.Log{small(1), small(2), big}); err != nil {
		t.Fatal(err)
	}
	get := func(i uint64) raft.Log {
		t.Helper()
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if l.Index != i {
			t.Fatalf("get %d returned entry %d", i, l.Index)
		}
		return l
	}
	get(1)
	get(2)
	if store.reads != 0 {
		t.Fatalf("%d reads reached the store for cached entries", store.reads)
	}
	if l := get(3); len(l.Data) != len(big.Data) || store.reads != 1 {
		t.Fatalf("big entry: %d bytes, %d store reads; want it read from the store", len(l.Data), store.reads)
	}
	// An entry in the same slot replaces the older one.
	wrap := small(1 + logCacheSlots)
	if err := c.StoreLog(wrap); err != nil {
		t.Fatal(err)
	}
	before := store.reads
	get(1)
	if store.reads != before+1 {
		t.Fatal("entry 1 was served from a slot that now holds another entry")
	}
	get(1 + logCacheSlots)
	// After a deletion nothing is served from the cache.
	if err := c.DeleteRange(2, 2); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(2, &l); err != raft.ErrLogNotFound {
		t.Fatalf("deleted entry: %v", err)
	}
}

// The WAL cannot have gaps; hiding that from Raft breaks snapshot installs.
func TestLogCacheKeepsMonotonic(t *testing.T) {
	w, err := wal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var store raft.LogStore = newLogCache(w)
	if m, ok := store.(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatal("the cache in front of raft-wal does not report a monotonic store")
	}
	if newLogCache(raft.NewInmemStore()).IsMonotonic() {
		t.Fatal("the cache in front of an in-memory store reports a monotonic store")
	}
}
