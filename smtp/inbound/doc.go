// Package inbound is yubin's SMTP server (Postfix's smtpd(8) plus the
// message-building half of cleanup(8)): it speaks SMTP through the patched
// go-smtp server, enforces Postfix's protocol limits and restrictions (via
// package policy), adds the Received:, Message-Id: and Date: headers, and
// hands each message to a Queue. A message is acknowledged with
// "250 2.0.0 Ok: queued as ID" only after Queue.Submit has returned nil.
//
// Security controls live here too: SMTP AUTH (PLAIN, LOGIN) through an
// internal/sasl Verifier and only over TLS unless explicitly allowed, the
// smtpd_tls_security_level = encrypt policy, and Postfix's anvil limits per
// client address (subpackage anvil). docs/security.md describes them all.
//
// Replies and mail log lines follow Postfix's wording so that existing
// monitoring, pflogsumm and administrators' habits keep working.
package inbound
