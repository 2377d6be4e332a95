package mailbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Permission bits for permits.
const (
	permRead  = 4
	permWrite = 2
	permExec  = 1
)

// permits reports whether o may access a file with stat st in the ways
// in want, judged by owner, group and other bits like the kernel does for
// a process with only a primary group (Postfix enables no secondary groups
// for deliveries).
func permits(st *unix.Stat_t, o Owner, want uint32) bool {
	if o.UID == 0 {
		return true
	}
	switch {
	case int(st.Uid) == o.UID:
		return (st.Mode>>6)&want == want
	case int(st.Gid) == o.GID:
		return (st.Mode>>3)&want == want
	}
	return st.Mode&want == want
}

// chownTo gives a newly created file or directory to o. When the agent is
// not root it can only keep files as its own, so a request for another
// owner fails instead of leaving a file the recipient cannot read.
func chownTo(fd int, o Owner) error {
	if o.UID < 0 {
		return nil
	}
	euid := os.Geteuid()
	if euid != 0 && o.UID == euid {
		return nil
	}
	if err := unix.Fchown(fd, o.UID, o.GID); err != nil {
		return fmt.Errorf("chown to %d:%d: %w", o.UID, o.GID, err)
	}
	return nil
}

// openDir opens the directory path component by component. With
// o.Enforce, o must be allowed to search every directory on the way, and a
// symbolic link is followed only when root owns it (an administrator's
// link, not one a user planted). With create, missing directories are
// made with mode 0700 and given to o, like Postfix's make_dirs() run with
// the recipient's rights.
func openDir(path string, o Owner, create bool) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%q is not an absolute path", path)
	}
	path = filepath.Clean(path)
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /: %w", err)
	}
	done := "/"
	for _, comp := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if comp == "" {
			continue
		}
		next, err := openDirAt(fd, comp, o, create)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", filepath.Join(done, comp), err)
		}
		fd = next
		done = filepath.Join(done, comp)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// dirCreation orders directory creation against opening: a directory is
// created by root and then given to its owner, and no delivery may enter it
// in between (two deliveries creating one Maildir at once).
var dirCreation sync.RWMutex

func openDirAt(dirfd int, name string, o Owner, create bool) (int, error) {
	dirCreation.RLock()
	fd, err := openDirAtLocked(dirfd, name, o, create, false)
	dirCreation.RUnlock()
	if err == errNeedCreate {
		dirCreation.Lock()
		fd, err = openDirAtLocked(dirfd, name, o, create, true)
		dirCreation.Unlock()
	}
	return fd, err
}

var errNeedCreate = errors.New("directory must be created")

func openDirAtLocked(dirfd int, name string, o Owner, create, exclusive bool) (int, error) {
	var st unix.Stat_t
	if o.Enforce {
		if err := unix.Fstat(dirfd, &st); err != nil {
			return -1, err
		}
		if !permits(&st, o, permExec) {
			return -1, fmt.Errorf("search permission denied for uid %d: %w", o.UID, unix.EACCES)
		}
	}
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW, 0)
	switch {
	case err == nil:
		return fd, nil
	case err == unix.ELOOP || err == unix.ENOTDIR:
		var lst unix.Stat_t
		if serr := unix.Fstatat(dirfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return -1, serr
		}
		if lst.Mode&unix.S_IFMT != unix.S_IFLNK {
			return -1, err
		}
		if o.Enforce && lst.Uid != 0 {
			return -1, fmt.Errorf("refusing to follow symbolic link owned by uid %d", lst.Uid)
		}
		return unix.Openat(dirfd, name, flags, 0)
	case err == unix.ENOENT && create && !exclusive:
		return -1, errNeedCreate
	case err == unix.ENOENT && create:
		if o.Enforce && !permits(&st, o, permWrite|permExec) {
			return -1, fmt.Errorf("cannot create: write permission denied for uid %d: %w", o.UID, unix.EACCES)
		}
		if err := unix.Mkdirat(dirfd, name, 0o700); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("mkdir: %w", err)
		}
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW, 0)
		if err != nil {
			return -1, err
		}
		if err := chownTo(fd, o); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	return -1, err
}

// createFileAt creates name in dir with mode 0600 for o, checking o's write
// permission on the directory when enforced.
func createFileAt(dir *os.File, name string, o Owner, flags int) (*os.File, error) {
	dirfd := int(dir.Fd())
	if o.Enforce {
		var st unix.Stat_t
		if err := unix.Fstat(dirfd, &st); err != nil {
			return nil, err
		}
		if !permits(&st, o, permWrite|permExec) {
			return nil, fmt.Errorf("cannot create file: write permission denied for uid %d: %w", o.UID, unix.EACCES)
		}
	}
	fd, err := unix.Openat(dirfd, name, flags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := chownTo(fd, o); err != nil {
		unix.Close(fd)
		unix.Unlinkat(dirfd, name, 0)
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}
