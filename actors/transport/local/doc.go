// Package local is yubin's local delivery agent, after Postfix local(8):
// it delivers one recipient of a queued message to the user's mailbox (a
// UNIX mbox in mail_spool_directory, or home_mailbox as mbox or Maildir),
// through mailbox_command, or to the command or file an alias expanded
// to, with the user's (or the alias owner's) rights.
//
// Like Postfix it prepends Return-Path:, X-Original-To: and Delivered-To:
// headers, bounces mail that already carries a Delivered-To: header for
// the recipient (a forwarding loop), and reports in Postfix's words
// ("delivered to mailbox", `unknown user: "joe"`, ...), so maillog lines
// read as they would on a Postfix host.
//
// Alias and .forward expansion happen before the agent is called: the
// scheduler passes the expanded Target with its class and owner.
package local
