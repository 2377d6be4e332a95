package mailbox

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// testOwner is "nobody" when the tests run as root (so ownership is really
// exercised), else the current user; isRoot tells which.
func testOwner(t *testing.T) (o Owner, isRoot bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return Owner{UID: os.Geteuid(), GID: os.Getegid()}, false
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("running as root but no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return Owner{UID: uid, GID: gid}, true
}

// openTempDir returns a temp directory that every user can search and
// write, inside parents every user can search.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}
