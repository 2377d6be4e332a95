package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/internal/lookup"
)

// mapTable is an in-memory lookup table, like a postmap'd hash: file.
// Keys are stored lower-case, as postmap folds them.
type mapTable struct {
	name string
	m    map[string]string
	keys []string // every key asked for, in order
}

func table(name string, kv ...string) *mapTable {
	t := &mapTable{name: name, m: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		t.m[strings.ToLower(kv[i])] = kv[i+1]
	}
	return t
}

func (t *mapTable) Lookup(key string) (string, bool, error) {
	t.keys = append(t.keys, key)
	v, ok := t.m[key]
	return v, ok, nil
}

func (t *mapTable) Name() string { return t.name }

// brokenTable fails every lookup, like an unreachable database.
type brokenTable struct{}

var errBroken = errors.New("connection refused")

func (brokenTable) Lookup(string) (string, bool, error) { return "", false, errBroken }
func (brokenTable) Name() string                        { return "tcp:127.0.0.1:1" }

// baseSettings is DefaultSettings for mx.example.com with only loopback
// interfaces, so that tests do not depend on this machine's addresses.
func baseSettings() Settings {
	s := DefaultSettings("mx.example.com")
	s.InetInterfaces = []string{"loopback-only"}
	return s
}

func mustNew(t *testing.T, s Settings) *Rewriter {
	t.Helper()
	r, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func tables(ts ...*mapTable) []lookup.Table {
	out := make([]lookup.Table, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}
