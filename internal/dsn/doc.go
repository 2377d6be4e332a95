// Package dsn composes RFC 3464 delivery status notifications the way
// Postfix's bounce(8) does: a multipart/report with Postfix's human
// readable text ("This is the mail system at host ..."), a
// message/delivery-status part with per-message and per-recipient fields,
// and the original message or only its headers.
//
// Composed messages use LF line endings throughout; the SMTP client
// converts to CRLF on the wire. ShouldNotify decides, from the sender and
// the recipient's DSN NOTIFY parameter, whether a notice is sent at all.
package dsn
