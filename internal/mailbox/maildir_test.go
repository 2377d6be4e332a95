package mailbox

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDeliverMaildir(t *testing.T) {
	owner, isRoot := testOwner(t)
	owner.Enforce = true
	home := filepath.Join(openTempDir(t), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(home, owner.UID, owner.GID)
	dir := filepath.Join(home, "Maildir")
	now := func() time.Time { return time.Unix(1700000000, 123456000) }
	opts := MaildirOptions{Owner: owner, Hostname: "mx/1:a", Now: now}
	var paths []string
	for i := 0; i < 3; i++ {
		p, err := DeliverMaildir(context.Background(), dir, opts, writeString("Subject: x\n\nbody\n"))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if paths[0] == paths[1] || paths[1] == paths[2] {
		t.Fatalf("names not unique: %v", paths)
	}
	name := filepath.Base(paths[0])
	if !strings.HasPrefix(name, "1700000000.M123456P") || !strings.HasSuffix(name, `.mx\0571\072a`) {
		t.Errorf("unexpected name %q", name)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("%s missing: %v", sub, err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v, want 0700", sub, st.Mode().Perm())
		}
		if isRoot && int(st.Sys().(*syscall.Stat_t).Uid) != owner.UID {
			t.Errorf("%s not owned by %d", sub, owner.UID)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 3 {
		t.Fatalf("new/ has %d files, want 3", len(ents))
	}
	data, _ := os.ReadFile(paths[0])
	if string(data) != "Subject: x\n\nbody\n" {
		t.Errorf("content %q", data)
	}
	st, _ := os.Stat(paths[0])
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", st.Mode().Perm())
	}
	if isRoot && int(st.Sys().(*syscall.Stat_t).Uid) != owner.UID {
		t.Errorf("file not owned by %d", owner.UID)
	}
}

func TestDeliverMaildirWriteFailureLeavesNothing(t *testing.T) {
	owner, _ := testOwner(t)
	dir := filepath.Join(openTempDir(t), "md")
	_, err := DeliverMaildir(context.Background(), dir, MaildirOptions{Owner: owner, Hostname: "h"},
		func(w io.Writer) error {
			io.WriteString(w, "half")
			return errors.New("copy failed")
		})
	if err == nil {
		t.Fatal("write failure not reported")
	}
	for _, sub := range []string{"tmp", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ not empty after failure: %v", sub, ents)
		}
	}
}
