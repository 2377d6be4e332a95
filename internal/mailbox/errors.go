package mailbox

import (
	"errors"

	"golang.org/x/sys/unix"
)

// DSNForError maps a mailbox write failure to an enhanced status code the
// way Postfix's mbox_dsn() does: a full file system is temporary (4.3.1),
// an over-quota or too-large mailbox is permanent (5.2.2), a busy lock or
// a stale NFS handle is temporary (4.2.0); anything else gets def.
func DSNForError(err error, def string) string {
	switch {
	case errors.Is(err, ErrLockBusy), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ESTALE):
		return "4.2.0"
	case errors.Is(err, unix.ENOSPC):
		return "4.3.1"
	case errors.Is(err, unix.EDQUOT), errors.Is(err, unix.EFBIG):
		return "5.2.2"
	}
	return def
}
