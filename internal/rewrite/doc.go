// Package rewrite is yubin's trivial-rewrite(8) and the address expansion
// that Postfix's cleanup(8) and local(8) do: it turns an envelope address
// into canonical form (Canonicalize), decides its address class (Class,
// following ADDRESS_CLASS_README), resolves it to a (transport, nexthop,
// recipient) triple (Route, with transport(5) overrides) and expands it
// through virtual(5) and aliases(5) tables (Expand).
//
// Everything is driven by a Settings value that mirrors the main.cf
// parameters of the same names, so an administrator's Postfix
// configuration routes the same way here. Lookup tables are passed in as
// lookup.Table values; this package only decides which keys to ask for, in
// the order Postfix asks for them.
package rewrite
