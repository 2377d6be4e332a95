// Package dnsres is yubin's DNS stub resolver: the MX, A/AAAA, PTR, TXT and
// TLSA lookups the MTA needs, sent to the name servers the administrator
// configured (the dns_servers parameter) or those of /etc/resolv.conf.
//
// It talks DNS directly with github.com/miekg/dns instead of using the Go
// standard resolver so that yubin controls timeouts and retries, can see the
// AD bit for DANE, and can tell a temporary failure (SERVFAIL, timeout) from
// a permanent one (NXDOMAIN, NODATA): that difference decides whether mail is
// deferred or bounced. Errors are *Error values; use IsTemporary, IsNotFound
// and errors.Is(err, ErrNullMX) to classify them.
package dnsres
