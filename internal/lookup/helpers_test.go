package lookup

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lookupCase is one key and its expected answer.
type lookupCase struct {
	key   string
	value string
	found bool
}

func checkLookups(t *testing.T, tab Table, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		v, ok, err := tab.Lookup(c.key)
		if err != nil {
			t.Errorf("%s: Lookup(%q) error: %v", tab.Name(), c.key, err)
			continue
		}
		if ok != c.found || v != c.value {
			t.Errorf("%s: Lookup(%q) = %q, %v; want %q, %v", tab.Name(), c.key, v, ok, c.value, c.found)
		}
	}
}
