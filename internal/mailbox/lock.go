package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LockStyle is a set of mailbox locking methods, as in Postfix's
// mailbox_delivery_lock and virtual_mailbox_lock.
type LockStyle uint

const (
	// LockFcntl takes a POSIX fcntl(F_SETLK) write lock on the mailbox.
	LockFcntl LockStyle = 1 << iota
	// LockFlock takes a BSD flock(LOCK_EX) lock on the mailbox.
	LockFlock
	// LockDotlock creates "mailbox.lock" next to the mailbox.
	LockDotlock
)

// DefaultLockStyle is Postfix's default on Linux: "fcntl, dotlock".
const DefaultLockStyle = LockFcntl | LockDotlock

// ParseLockStyle parses a mailbox_delivery_lock value such as
// "fcntl, dotlock" (separated by commas and/or white space).
func ParseLockStyle(s string) (LockStyle, error) {
	var style LockStyle
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		switch strings.ToLower(f) {
		case "fcntl":
			style |= LockFcntl
		case "flock":
			style |= LockFlock
		case "dotlock":
			style |= LockDotlock
		default:
			return 0, fmt.Errorf("unknown mailbox lock method %q (want fcntl, flock or dotlock)", f)
		}
	}
	return style, nil
}

// LockOptions controls lock retries, after deliver_lock_attempts,
// deliver_lock_delay and stale_lock_time.
type LockOptions struct {
	Style LockStyle
	// Attempts is how often a busy lock is tried (default 20).
	Attempts int
	// Delay is the pause between attempts (default 1s).
	Delay time.Duration
	// StaleAfter is the age after which a dotlock file is removed as
	// stale (default 500s).
	StaleAfter time.Duration
}

func (o LockOptions) withDefaults() LockOptions {
	if o.Attempts <= 0 {
		o.Attempts = 20
	}
	if o.Delay <= 0 {
		o.Delay = time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 500 * time.Second
	}
	return o
}

// ErrLockBusy is returned (wrapped) when a lock could not be obtained in
// the allowed number of attempts; deliveries defer on it (4.2.0).
var ErrLockBusy = errors.New("unable to lock for exclusive access")

// retry calls try until it succeeds, fails with a non-busy error, the
// attempts run out or ctx ends.
func retry(ctx context.Context, o LockOptions, what string, try func() (busy bool, err error)) error {
	var last error
	for i := 0; i < o.Attempts; i++ {
		busy, err := try()
		if err == nil {
			return nil
		}
		if !busy {
			return err
		}
		last = err
		if i == o.Attempts-1 {
			break
		}
		t := time.NewTimer(o.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return fmt.Errorf("%s: %w: %w", what, ErrLockBusy, last)
}

// lockFile takes the kernel locks in style on f.
func lockFile(ctx context.Context, f *os.File, o LockOptions) error {
	fd := int(f.Fd())
	if o.Style&LockFcntl != 0 {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
		err := retry(ctx, o, "fcntl lock "+f.Name(), func() (bool, error) {
			err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
			return err == unix.EAGAIN || err == unix.EACCES, err
		})
		if err != nil {
			return err
		}
	}
	if o.Style&LockFlock != 0 {
		err := retry(ctx, o, "flock "+f.Name(), func() (bool, error) {
			err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
			return err == unix.EWOULDBLOCK, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dotlock creates path+".lock" with O_EXCL, removing a lock file older
// than o.StaleAfter. It returns the unlock function. A directory where the
// lock cannot be created for lack of permission is not an error, as with
// Postfix's "dotlock may fail" for non-spool mailboxes: the kernel locks
// still apply.
func dotlock(ctx context.Context, path string, o LockOptions) (unlock func(), err error) {
	lockPath := path + ".lock"
	noop := func() {}
	err = retry(ctx, o, "dotlock "+lockPath, func() (bool, error) {
		f, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			return false, f.Close()
		}
		if errors.Is(err, os.ErrExist) {
			if st, serr := os.Lstat(lockPath); serr == nil && time.Since(st.ModTime()) > o.StaleAfter {
				os.Remove(lockPath) // stale: the holder died; retry at once
			}
			return true, err
		}
		return false, err
	})
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return noop, nil
		}
		return noop, err
	}
	return func() { os.Remove(lockPath) }, nil
}
