// Package sasl authenticates SMTP AUTH clients for the SMTP server.
//
// It has three parts:
//
//   - the server side of the PLAIN (RFC 4616) and LOGIN mechanisms, which
//     turn the client's responses into a user name and password
//     (NewMechanism);
//   - Verifiers that check those credentials: a passwd-style file of
//     bcrypt or Argon2id hashes (smtpd_sasl_type = passwd, yubin's own)
//     and the client side of Dovecot's authentication protocol
//     (smtpd_sasl_type = dovecot), as Postfix's xsasl_dovecot speaks it;
//   - Open, which maps main.cf's smtpd_sasl_type and smtpd_sasl_path onto
//     a Verifier.
//
// A Verifier reports wrong credentials as ErrInvalidCredentials, so the
// server can answer 535 and count the failure; any other error (an
// unreachable Dovecot, an unreadable file) is temporary (454).
package sasl
