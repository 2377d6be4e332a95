// Package mailbox holds what yubin's final delivery agents (local, virtual
// and pipe, modelled on Postfix local(8), virtual(8) and pipe(8)) share:
//
//   - the Delivery request and Result answer every agent speaks;
//   - Copy, which writes a queued message with Postfix's envelope headers
//     (From_ line, Return-Path:, X-Original-To:, Delivered-To:) and its
//     quoting rules (">From ", dot-stuffing, trailing blank line);
//   - AppendMbox, a UNIX mailbox append with fcntl/flock/dotlock locking,
//     fsync, and truncation back to the original size when a write fails;
//   - DeliverMaildir, qmail-style tmp/ → new/ delivery with fsync of the
//     file and the directory;
//   - the mapping from errno values to enhanced status codes that Postfix's
//     mbox_dsn() uses (disk full defers, quota bounces).
//
// Files are opened with the rights of the mailbox owner when asked to
// (Owner.Enforce): every directory on the path is opened with openat and
// its permission bits are checked for that owner, so a delivery made on a
// user's behalf can only write where the user could.
package mailbox
