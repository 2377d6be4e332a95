package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MaildirOptions controls DeliverMaildir.
type MaildirOptions struct {
	// Owner owns created directories (0700) and the message file (0600);
	// with Owner.Enforce all access uses Owner's permissions.
	Owner Owner
	// Hostname goes into the unique file name.
	Hostname string
	// Now returns the time for the file name; nil means time.Now.
	Now func() time.Time
}

// maildirCounter makes names unique within this process, the "Q" part of
// the classic time.MusecPpidQn.host name.
var maildirCounter atomic.Uint64

// DeliverMaildir writes one message into the maildir dir (created with
// cur/, new/ and tmp/ when missing): the message is written and fsynced
// under tmp/, hard-linked into new/, and new/ is fsynced, so a message is
// either wholly in new/ or absent. It returns the file's path in new/.
func DeliverMaildir(ctx context.Context, dir string, opts MaildirOptions, write func(io.Writer) error) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("maildir path %q must be absolute", dir)
	}
	dir = filepath.Clean(dir)
	top, err := openDir(dir, opts.Owner, true)
	if err != nil {
		return "", fmt.Errorf("create maildir %s: %w", dir, err)
	}
	defer top.Close()
	subs := map[string]*os.File{}
	for _, sub := range []string{"tmp", "new", "cur"} {
		fd, err := openDirAt(int(top.Fd()), sub, opts.Owner, true)
		if err != nil {
			for _, f := range subs {
				f.Close()
			}
			return "", fmt.Errorf("create maildir %s/%s: %w", dir, sub, err)
		}
		subs[sub] = os.NewFile(uintptr(fd), filepath.Join(dir, sub))
	}
	defer func() {
		for _, f := range subs {
			f.Close()
		}
	}()
	tmpDir, newDir := subs["tmp"], subs["new"]

	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	host := maildirHost(opts.Hostname)
	for attempt := 0; attempt < 10; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		t := now()
		name := fmt.Sprintf("%d.M%dP%dQ%d.%s", t.Unix(), t.Nanosecond()/1000, os.Getpid(), maildirCounter.Add(1), host)
		f, err := createFileAt(tmpDir, name, opts.Owner, unix.O_WRONLY)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create maildir file %s/tmp/%s: %w", dir, name, err)
		}
		werr := write(f)
		if werr == nil {
			if err := f.Sync(); err != nil {
				werr = fmt.Errorf("fsync: %w", err)
			}
		}
		if err := f.Close(); err != nil && werr == nil {
			werr = fmt.Errorf("close: %w", err)
		}
		if werr != nil {
			unix.Unlinkat(int(tmpDir.Fd()), name, 0)
			return "", fmt.Errorf("maildir file %s/tmp/%s: %w", dir, name, werr)
		}
		err = unix.Linkat(int(tmpDir.Fd()), name, int(newDir.Fd()), name, 0)
		unix.Unlinkat(int(tmpDir.Fd()), name, 0)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("link maildir file %s/tmp/%s to new/: %w", dir, name, err)
		}
		if err := newDir.Sync(); err != nil {
			return "", fmt.Errorf("fsync maildir %s/new: %w", dir, err)
		}
		return filepath.Join(dir, "new", name), nil
	}
	return "", fmt.Errorf("maildir %s: could not find a unique file name", dir)
}

// maildirHost escapes "/" and ":" in the host name as the maildir
// convention asks, so the name stays one path component without flags.
func maildirHost(h string) string {
	if h == "" {
		h, _ = os.Hostname()
	}
	if h == "" {
		h = "localhost"
	}
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
}
