package lookup

import (
	"fmt"
	"os"
	"sync"
)

// compiledTable is an immutable, parsed table; safe for concurrent use.
type compiledTable interface {
	lookup(key string) (string, bool, error)
}

// compileFunc parses a source into a table and its non-fatal warnings.
type compileFunc func(src *source) (compiledTable, []string, error)

// fileTable is a table read from a text file. Every lookup stats the file
// and re-reads it when it was replaced, resized or touched, so "postfix
// reload"-style edits take effect without restarting; the parsed table is
// swapped atomically under a lock.
type fileTable struct {
	spec    string
	path    string
	compile compileFunc
	pattern bool

	mu       sync.RWMutex
	info     os.FileInfo
	table    compiledTable
	warnings []string
}

// openFileTable reads path once so that a missing or broken file is
// reported by Open, not by the first lookup.
func openFileTable(spec, path string, pattern bool, compile compileFunc) (*fileTable, error) {
	t := &fileTable{spec: spec, path: path, compile: compile, pattern: pattern}
	if _, err := t.current(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *fileTable) Lookup(key string) (string, bool, error) {
	table, err := t.current()
	if err != nil {
		return "", false, err
	}
	return table.lookup(key)
}

func (t *fileTable) Name() string    { return t.spec }
func (t *fileTable) IsPattern() bool { return t.pattern }

// Warnings returns the non-fatal problems of the most recent read.
func (t *fileTable) Warnings() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.warnings
}

// current returns the parsed table, re-reading the file if it changed.
// A file that became unreadable or invalid is an error for the lookup
// (mail is deferred, not misrouted); the next lookup tries again.
func (t *fileTable) current() (compiledTable, error) {
	info, err := os.Stat(t.path)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", t.spec, err)
	}
	t.mu.RLock()
	table, old := t.table, t.info
	t.mu.RUnlock()
	if table != nil && sameVersion(old, info) {
		return table, nil
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.table != nil && sameVersion(t.info, info) {
		return t.table, nil // another goroutine reloaded meanwhile
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", t.spec, err)
	}
	defer f.Close()
	// Stat the opened file so the version recorded matches what is read.
	if info, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("open table %s: %w", t.spec, err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("open table %s: %s is a directory", t.spec, t.path)
	}
	// Syntax errors already read "file:line: reason"; no prefix needed.
	src, err := readSource(t.path, f)
	if err != nil {
		return nil, err
	}
	table, warnings, err := t.compile(src)
	if err != nil {
		return nil, err
	}
	t.table, t.info, t.warnings = table, info, warnings
	return table, nil
}

func sameVersion(a, b os.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
