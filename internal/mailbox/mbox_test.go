package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

var fastLock = LockOptions{Style: LockFcntl | LockFlock | LockDotlock, Attempts: 2, Delay: 10 * time.Millisecond}

func TestAppendMbox(t *testing.T) {
	owner, isRoot := testOwner(t)
	dir := openTempDir(t)
	path := filepath.Join(dir, "nobody")
	opts := MboxOptions{Owner: owner, StrictOwnership: true, Lock: fastLock}
	for _, m := range []string{"From a  x\nmsg1\n\n", "From b  y\nmsg2\n\n"} {
		if err := AppendMbox(context.Background(), path, opts, writeString(m)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "From a  x\nmsg1\n\nFrom b  y\nmsg2\n\n" {
		t.Errorf("mailbox = %q", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	if isRoot {
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != owner.UID || int(sys.Gid) != owner.GID {
			t.Errorf("owner = %d:%d, want %d:%d", sys.Uid, sys.Gid, owner.UID, owner.GID)
		}
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("dotlock left behind: %v", err)
	}
}

func TestAppendMboxTruncatesOnError(t *testing.T) {
	owner, _ := testOwner(t)
	path := filepath.Join(openTempDir(t), "box")
	opts := MboxOptions{Owner: owner, Lock: fastLock}
	if err := AppendMbox(context.Background(), path, opts, writeString("first\n\n")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("copy failed")
	err := AppendMbox(context.Background(), path, opts, func(w io.Writer) error {
		io.WriteString(w, "partial message that must vanish\n")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "first\n\n" {
		t.Errorf("mailbox after failed append = %q", got)
	}
}

func TestAppendMboxLockBusy(t *testing.T) {
	owner, _ := testOwner(t)
	dir := openTempDir(t)

	t.Run("dotlock", func(t *testing.T) {
		path := filepath.Join(dir, "dot")
		if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := AppendMbox(context.Background(), path, MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
		if !errors.Is(err, ErrLockBusy) {
			t.Fatalf("err = %v, want ErrLockBusy", err)
		}
		if DSNForError(err, "5.0.0") != "4.2.0" {
			t.Errorf("busy lock DSN = %s", DSNForError(err, "5.0.0"))
		}
	})
	t.Run("stale dotlock", func(t *testing.T) {
		path := filepath.Join(dir, "stale")
		if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(path+".lock", old, old)
		lk := fastLock
		lk.StaleAfter = time.Minute
		if err := AppendMbox(context.Background(), path, MboxOptions{Owner: owner, Lock: lk}, writeString("x\n")); err != nil {
			t.Fatalf("stale lock not broken: %v", err)
		}
	})
	t.Run("flock", func(t *testing.T) {
		path := filepath.Join(dir, "flocked")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		os.Chown(path, owner.UID, owner.GID)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		err = AppendMbox(context.Background(), path, MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
		if !errors.Is(err, ErrLockBusy) {
			t.Fatalf("err = %v, want ErrLockBusy", err)
		}
	})
}

func TestAppendMboxRefuses(t *testing.T) {
	owner, isRoot := testOwner(t)
	dir := openTempDir(t)
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o600)
	os.Chown(target, owner.UID, owner.GID)

	link := filepath.Join(dir, "symlink")
	os.Symlink(target, link)
	hard := filepath.Join(dir, "hardlink")
	os.Link(target, hard)
	fifo := filepath.Join(dir, "fifo")
	unix.Mkfifo(fifo, 0o600)

	cases := map[string]string{link: "symbolic link", hard: "hard links", fifo: ""}
	if isRoot {
		rootOwned := filepath.Join(dir, "rootowned")
		os.WriteFile(rootOwned, nil, 0o600)
		cases[rootOwned] = "not by the recipient"
	}
	for path, want := range cases {
		opts := MboxOptions{Owner: owner, StrictOwnership: true, Lock: fastLock}
		err := AppendMbox(context.Background(), path, opts, writeString("x\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want mention of %q", filepath.Base(path), err, want)
		}
	}
	if err := AppendMbox(context.Background(), "relative/box", MboxOptions{}, writeString("x")); err == nil {
		t.Error("relative path accepted")
	}
}

// TestEnforcedPermissions checks that a delivery with the user's rights
// cannot write where the user could not.
func TestEnforcedPermissions(t *testing.T) {
	owner, isRoot := testOwner(t)
	if !isRoot {
		t.Skip("permission enforcement for another user needs root")
	}
	owner.Enforce = true
	dir := openTempDir(t)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o755) // root's, not writable by the owner
	err := AppendMbox(context.Background(), filepath.Join(private, "box"), MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
	if !errors.Is(err, unix.EACCES) {
		t.Errorf("create in root's dir: err = %v, want EACCES", err)
	}
	closed := filepath.Join(dir, "closed")
	os.Mkdir(closed, 0o700)
	os.Mkdir(filepath.Join(closed, "inner"), 0o777)
	err = AppendMbox(context.Background(), filepath.Join(closed, "inner", "box"), MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
	if !errors.Is(err, unix.EACCES) {
		t.Errorf("path through unsearchable dir: err = %v, want EACCES", err)
	}
	readonly := filepath.Join(dir, "readonly")
	os.WriteFile(readonly, nil, 0o644)
	err = AppendMbox(context.Background(), readonly, MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
	if !errors.Is(err, unix.EACCES) {
		t.Errorf("root's file: err = %v, want EACCES", err)
	}
	// A symlink planted by the user is not followed.
	userDir := filepath.Join(dir, "userdir")
	os.Mkdir(userDir, 0o755)
	os.Chown(userDir, owner.UID, owner.GID)
	os.Symlink(private, filepath.Join(userDir, "sneaky"))
	os.Lchown(filepath.Join(userDir, "sneaky"), owner.UID, owner.GID)
	err = AppendMbox(context.Background(), filepath.Join(userDir, "sneaky", "box"), MboxOptions{Owner: owner, Lock: fastLock}, writeString("x\n"))
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("user's symlink: err = %v", err)
	}
}

func TestParseLockStyle(t *testing.T) {
	tests := []struct {
		in      string
		want    LockStyle
		wantErr bool
	}{
		{"fcntl, dotlock", LockFcntl | LockDotlock, false},
		{"flock", LockFlock, false},
		{"FCNTL flock,dotlock", LockFcntl | LockFlock | LockDotlock, false},
		{"", 0, false},
		{"lockf", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLockStyle(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLockStyle(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDSNForError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("write: %w", unix.ENOSPC), "4.3.1"},
		{fmt.Errorf("write: %w", unix.EDQUOT), "5.2.2"},
		{fmt.Errorf("write: %w", unix.EFBIG), "5.2.2"},
		{fmt.Errorf("x: %w", ErrLockBusy), "4.2.0"},
		{errors.New("other"), "4.9.9"},
	}
	for _, tt := range tests {
		if got := DSNForError(tt.err, "4.9.9"); got != tt.want {
			t.Errorf("DSNForError(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
