// Package address parses SMTP envelope addresses strictly, the way RFC 5321
// (and RFC 6531 for SMTPUTF8) defines them, for MAIL FROM and RCPT TO.
//
// It exists because a relay must see addresses exactly as the client sent
// them: go-smtp's parser strips quotes and source routes, which hides the
// very forms ("user@remote"@you, @you:user@remote) that open-relay scanners
// use. Parsed addresses keep quoted local parts quoted; routing attempts are
// reported through typed errors and HasRoutingChars so the relay policy can
// decide.
package address
