// Package virtual is yubin's virtual mailbox delivery agent, after
// Postfix virtual(8): the recipient's full address is looked up in
// virtual_mailbox_maps (user+ext@domain, user@domain, then the @domain
// catch-all), the result names a mailbox under virtual_mailbox_base
// (a trailing "/" means Maildir, else mbox), and virtual_uid_maps /
// virtual_gid_maps give the owner whose rights the delivery uses.
//
// It only delivers: no aliases, commands or files. Mail bounces when the
// recipient has no mailbox or is over quota; every other problem defers.
package virtual
