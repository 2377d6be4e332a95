package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MboxOptions controls AppendMbox.
type MboxOptions struct {
	// Owner owns a newly created mailbox file (mode 0600); with
	// Owner.Enforce the file is opened with Owner's permissions.
	Owner Owner
	// StrictOwnership refuses an existing mailbox not owned by Owner.UID
	// (Postfix's strict_mailbox_ownership).
	StrictOwnership bool
	Lock            LockOptions
}

// AppendMbox appends one message to the UNIX mailbox file at path, which
// is created if missing. write must produce the complete entry (From_
// line, message, blank line; see Copy with MboxFlags). The mailbox is
// locked for the whole append; if write or the final fsync fails, the file
// is truncated back to its original size so no partial message is left.
func AppendMbox(ctx context.Context, path string, opts MboxOptions, write func(io.Writer) error) (err error) {
	if !filepath.IsAbs(path) || path != filepath.Clean(path) || filepath.Base(path) == "/" {
		return fmt.Errorf("mailbox path %q must be a clean absolute file name", path)
	}
	lk := opts.Lock.withDefaults()
	if lk.Style == 0 {
		lk.Style = DefaultLockStyle
	}
	dirName, name := filepath.Split(path)
	dir, err := openDir(dirName, opts.Owner, false)
	if err != nil {
		return fmt.Errorf("mailbox %s: %w", path, err)
	}
	defer dir.Close()

	if lk.Style&LockDotlock != 0 {
		unlock, err := dotlock(ctx, path, lk)
		if err != nil {
			return fmt.Errorf("mailbox %s: %w", path, err)
		}
		defer unlock()
	}
	f, err := openMboxFile(dir, name, opts)
	if err != nil {
		return fmt.Errorf("mailbox %s: %w", path, err)
	}
	defer f.Close()
	if err := lockFile(ctx, f, lk); err != nil {
		return fmt.Errorf("mailbox %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mailbox %s: %w", path, err)
	}
	origSize := st.Size()
	undo := func(cause error) error {
		if terr := f.Truncate(origSize); terr != nil {
			return fmt.Errorf("mailbox %s: %w (and truncating back to %d bytes failed: %v)", path, cause, origSize, terr)
		}
		return fmt.Errorf("mailbox %s: %w", path, cause)
	}
	if err := write(f); err != nil {
		return undo(err)
	}
	if err := f.Sync(); err != nil {
		return undo(fmt.Errorf("fsync: %w", err))
	}
	return nil
}

// openMboxFile opens name in dir for appending, creating it for the owner
// when missing. It refuses anything but a regular file with one link, so
// a symlink or hard link cannot redirect the delivery.
func openMboxFile(dir *os.File, name string, opts MboxOptions) (*os.File, error) {
	o := opts.Owner
	const flags = unix.O_WRONLY | unix.O_APPEND
	for attempt := 0; attempt < 2; attempt++ {
		fd, err := unix.Openat(int(dir.Fd()), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == unix.ENOENT {
			f, cerr := createFileAt(dir, name, o, flags)
			if errors.Is(cerr, unix.EEXIST) {
				continue // someone else created it meanwhile; open theirs
			}
			return f, cerr
		}
		if err == unix.ELOOP {
			return nil, fmt.Errorf("is a symbolic link")
		}
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name))
		if err := checkExisting(f, opts); err != nil {
			f.Close()
			return nil, err
		}
		// O_NONBLOCK only guarded the open against a FIFO.
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFL, flags); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("file keeps appearing and disappearing")
}

func checkExisting(f *os.File, opts MboxOptions) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file")
	}
	if st.Nlink != 1 {
		return fmt.Errorf("file has %d hard links", st.Nlink)
	}
	o := opts.Owner
	if opts.StrictOwnership && o.UID >= 0 && int(st.Uid) != o.UID {
		return fmt.Errorf("file is owned by uid %d, not by the recipient uid %d", st.Uid, o.UID)
	}
	if o.Enforce && !permits(&st, o, permWrite) {
		return fmt.Errorf("write permission denied for uid %d: %w", o.UID, unix.EACCES)
	}
	return nil
}
