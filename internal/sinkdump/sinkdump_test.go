package sinkdump

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestCountMessageIDs(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a": "Received: x\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n",
		"b": "message-id: <2@x>\r\n\r\nMessage-ID: <not-a-header@x> in a body line\r\n",
		"c": "Subject: again\r\nMessage-ID: <1@x>\r\n\r\n",
		"d": "Subject: none\r\n\r\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := CountMessageIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"<1@x>": 2, "<2@x>": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := CountMessageIDs(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Fatalf("missing directory: %v, %v", got, err)
	}
}
