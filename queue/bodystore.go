package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// bodyStore keeps message bodies as files, one per message, fanned out over
// subdirectories by the last two characters of the ID. While a snapshot is
// being persisted, removals are postponed so the snapshot can still read
// every body it lists.
type bodyStore struct {
	dir string

	mu      sync.Mutex
	pins    int
	pending []string // IDs removed while pinned
}

func openBodyStore(dir string) (*bodyStore, error) {
	bs := &bodyStore{dir: filepath.Join(dir, "bodies")}
	if err := os.MkdirAll(bs.dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue body directory: %w", err)
	}
	return bs, nil
}

func (bs *bodyStore) path(id string) string {
	return filepath.Join(bs.dir, id[len(id)-2:], id)
}

// write stores a body. No fsync: the Raft log and snapshots hold the
// durable copy; these files are rebuilt from them after a crash.
func (bs *bodyStore) write(id string, body []byte) error {
	p := bs.path(id)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("write queue body %s: %w", id, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("write queue body %s: %w", id, err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			return fmt.Errorf("write queue body %s: %w", id, err)
		}
	}
	return nil
}

func (bs *bodyStore) open(id string) (io.ReadCloser, error) {
	f, err := os.Open(bs.path(id))
	if err != nil {
		return nil, fmt.Errorf("open queue body %s: %w", id, err)
	}
	return f, nil
}

func (bs *bodyStore) remove(id string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.pins > 0 {
		bs.pending = append(bs.pending, id)
		return
	}
	_ = os.Remove(bs.path(id)) // a leftover file is harmless: Restore rebuilds the store
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
	for _, id := range bs.pending {
		_ = os.Remove(bs.path(id))
	}
	bs.pending = nil
}

// replace swaps in a directory of restored bodies for the current one.
func (bs *bodyStore) replace(restored string) error {
	old := bs.dir + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(bs.dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	if err := os.Rename(restored, bs.dir); err != nil {
		return fmt.Errorf("restore queue bodies: %w", err)
	}
	return os.RemoveAll(old)
}
