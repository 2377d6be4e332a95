// Package policy evaluates Postfix's SMTP server access restrictions
// (smtpd_client_restrictions, smtpd_helo_restrictions,
// smtpd_sender_restrictions, smtpd_relay_restrictions,
// smtpd_recipient_restrictions, smtpd_data_restrictions) with Postfix's
// semantics and reply wording, plus the implicit recipient validation of
// smtpd_reject_unlisted_recipient.
//
// Semantics, as in Postfix 3.x with smtpd_delay_reject = yes:
//
//   - client, HELO and sender restrictions run at RCPT TO time, before the
//     relay and recipient restrictions;
//   - within one list the first decisive restriction wins: "permit" (or OK)
//     ends that list with success and evaluation continues with the next
//     list, "reject"/"defer" end the whole evaluation;
//   - the relay and the recipient lists must both pass
//     (smtpd_relay_before_recipient_restrictions = yes);
//   - DEFER_IF_PERMIT, DEFER_IF_REJECT and warn_if_reject act on later
//     results;
//   - the *_sender_login_mismatch restrictions compare the SASL login with
//     the owners smtpd_sender_login_maps lists for the sender.
//
// The server's view of the world comes in through three small inputs: an
// Env (address classes and recipient tables), a table opener for
// check_*_access, and a Resolver for the DNS checks. mynetworks matching
// lives here too (ParseNetworks, StyleNetworks).
package policy
