package outbound

import (
	"errors"
	"fmt"
	"strings"

	smtp "github.com/emersion/go-smtp"
)

// validateRequest rejects requests that cannot be attempted at all.
func validateRequest(req *Request) error {
	if req.Transport != TransportSMTP && req.Transport != TransportLMTP {
		return fmt.Errorf("unsupported transport %q", req.Transport)
	}
	if req.Body == nil {
		return errors.New("request has no message body")
	}
	if req.Size < 0 {
		return fmt.Errorf("negative message size %d", req.Size)
	}
	if req.Sender != "" {
		if err := checkAddress(req.Sender); err != nil {
			return fmt.Errorf("bad sender address: %w", err)
		}
	}
	return nil
}

// checkAddress rejects what cannot go inside <...> on an SMTP command line.
func checkAddress(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if len(a) > 512 {
		return errors.New("address too long")
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == ' ' {
			return fmt.Errorf("address %q contains a forbidden character", a)
		}
	}
	return nil
}

// mailOptions builds the MAIL FROM parameters. DSN parameters are dropped
// silently when invalid: they are advice, not worth a failed delivery.
func mailOptions(req *Request, ext func(string) bool) *smtp.MailOptions {
	o := &smtp.MailOptions{Size: req.Size}
	if ext("8BITMIME") { // BODY= only to servers that know it
		o.Body = smtp.Body7Bit
		if req.EightBitMIME {
			o.Body = smtp.Body8BitMIME
		}
	}
	o.UTF8 = req.SMTPUTF8 && ext("SMTPUTF8")
	switch strings.ToUpper(req.RET) {
	case "FULL":
		o.Return = smtp.DSNReturnFull
	case "HDRS":
		o.Return = smtp.DSNReturnHeaders
	}
	if printableASCII(req.ENVID) && len(req.ENVID) <= 100 {
		o.EnvelopeID = req.ENVID
	}
	return o
}

// rcptOptions builds the RCPT TO DSN parameters (sent only when the server
// offers DSN; go-smtp checks that).
func rcptOptions(r Recipient) *smtp.RcptOptions {
	o := &smtp.RcptOptions{}
	if r.Notify != "" {
		var notify []smtp.DSNNotify
		valid := true
		for _, n := range strings.Split(strings.ToUpper(r.Notify), ",") {
			switch v := smtp.DSNNotify(strings.TrimSpace(n)); v {
			case smtp.DSNNotifyNever, smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed:
				notify = append(notify, v)
			default:
				valid = false
			}
		}
		never := false
		for _, n := range notify {
			never = never || n == smtp.DSNNotifyNever
		}
		if valid && (!never || len(notify) == 1) {
			o.Notify = notify
		}
	}
	if typ, addr, ok := strings.Cut(r.ORCPT, ";"); ok && addr != "" {
		switch {
		case strings.EqualFold(typ, "rfc822") && printableASCII(addr):
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeRFC822, addr
		case strings.EqualFold(typ, "utf-8") && !strings.ContainsAny(addr, "\r\n"):
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeUTF8, addr
		}
	}
	return o
}

func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
