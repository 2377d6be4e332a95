// Package pipe is yubin's delivery agent for master.cf "pipe" services,
// after Postfix pipe(8): it runs argv= with ${sender}, ${recipient} and
// the other macros expanded, as the user= account, with the message on
// standard input shaped by flags= (F From_ line, R Return-Path:, D
// Delivered-To: with loop detection, O X-Original-To:, "." dot-stuffing,
// ">" From quoting, B blank line, q/u/h address quoting and case folding,
// X final delivery), and maps the exit status through <sysexits.h> as
// Postfix does.
package pipe
