// Package outbound delivers one message to one (transport, nexthop) over
// SMTP or LMTP, the way Postfix's smtp(8) and lmtp(8) clients do.
//
// A destination actor calls Client.Deliver once per delivery attempt with a
// batch of recipients. Deliver resolves the nexthop (MX hosts in preference
// order, their addresses in order, fallback relays last), tries servers
// until every recipient has a final answer or the candidates are used up,
// and returns one Result per recipient: Sent, Bounced or Deferred, with the
// enhanced status code and the reason text worded exactly as Postfix logs
// it ("host mx.example.com[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT
// TO command)"), plus the session facts the maillog line needs (relay,
// delays c and d, conn_use).
//
// Soft (4xx) failures on a server that is not the last candidate keep the
// recipients for the next server, as Postfix does; 5xx answers are final.
// Sessions that end cleanly are reset and parked in a small connection
// cache per nexthop for smtp_connection_cache_time_limit, and reused by the
// next Deliver to the same nexthop.
package outbound
