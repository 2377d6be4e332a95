package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the most recent small log entries in memory in front of
// the WAL: the leader reads every entry back to replicate it, and each
// node reads it again to apply it, right after writing it. raft.LogCache
// does this too, but holds any entry, and a queue entry can carry a whole
// message: bounding the entry size bounds the memory (slots × maxCached).
type logCache struct {
	raft.LogStore

	mu    sync.RWMutex
	slots []*raft.Log // by index modulo len(slots)
}

const (
	logCacheSlots  = 1024
	logCacheMaxLen = 64 << 10
)

func newLogCache(store raft.LogStore) *logCache {
	return &logCache{LogStore: store, slots: make([]*raft.Log, logCacheSlots)}
}

// IsMonotonic passes on the store's answer: raft-wal cannot have gaps, and
// Raft must know it to clear the log after installing a snapshot.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(index uint64, out *raft.Log) error {
	c.mu.RLock()
	l := c.slots[index%uint64(len(c.slots))]
	c.mu.RUnlock()
	if l != nil && l.Index == index {
		*out = *l
		return nil
	}
	return c.LogStore.GetLog(index, out)
}

func (c *logCache) StoreLog(l *raft.Log) error {
	return c.StoreLogs([]*raft.Log{l})
}

// StoreLogs caches the entries only once the store has them.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	err := c.LogStore.StoreLogs(logs)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		slot := &c.slots[l.Index%uint64(len(c.slots))]
		if err == nil && len(l.Data) <= logCacheMaxLen {
			*slot = l
		} else {
			*slot = nil // never serve an older entry for this slot
		}
	}
	return err
}

// DeleteRange forgets the cache: Raft deletes ranges to compact the log and
// to drop a follower's conflicting suffix, and is rare either way.
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	clear(c.slots)
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}
