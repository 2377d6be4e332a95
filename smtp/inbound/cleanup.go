package inbound

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"strings"
	"time"
)

// cleanMessage is a message after cleanup: final bytes and facts for logs.
type cleanMessage struct {
	body      []byte
	messageID string
}

// headerInfo summarises the header section of a received message.
type headerInfo struct {
	end       int // offset of the body (after the empty line), or len(data)
	hops      int // Received: and Delivered-To: headers
	messageID string
	hasMsgID  bool
	hasDate   bool
}

// scanHeaders finds the header section: it ends at the first empty line or
// at the first line that is neither a header field nor a continuation.
func scanHeaders(data []byte) headerInfo {
	var h headerInfo
	pos := 0
	inMsgID := false
	for pos < len(data) {
		nl := bytes.IndexByte(data[pos:], '\n')
		lineEnd := len(data)
		if nl >= 0 {
			lineEnd = pos + nl + 1
		}
		line := bytes.TrimRight(data[pos:lineEnd], "\r\n")
		if len(line) == 0 {
			h.end = lineEnd
			return h
		}
		if line[0] == ' ' || line[0] == '\t' {
			if pos == 0 {
				h.end = 0 // a body that starts with white space
				return h
			}
			if inMsgID {
				h.messageID += " " + strings.TrimSpace(string(line))
			}
			pos = lineEnd
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.ContainsAny(line[:colon], " \t") {
			h.end = pos // not a header: the body starts here
			return h
		}
		name := strings.ToLower(string(line[:colon]))
		inMsgID = false
		switch name {
		case "received", "delivered-to":
			h.hops++
		case "message-id":
			h.hasMsgID = true
			inMsgID = true
			h.messageID = strings.TrimSpace(string(line[colon+1:]))
		case "date":
			h.hasDate = true
		}
		pos = lineEnd
	}
	h.end = len(data)
	return h
}

// cleanup enforces the header limits and adds the Received: header and,
// for local clients, the missing Message-Id: and Date: headers.
func (st *connState) cleanup(data []byte) (*cleanMessage, error) {
	s := st.srv.s
	h := scanHeaders(data)
	if h.end > s.HeaderSizeLimit {
		// Postfix would truncate; refusing is safer than a half header.
		return nil, reply(552, "5.3.4", "Message header size exceeds fixed limit")
	}
	if h.hops+1 > s.HopcountLimit {
		// Postfix bounces; refusing at end of data tells the sender at once.
		return nil, reply(554, "5.4.6", "Too many hops")
	}
	now := s.Now()
	var out bytes.Buffer
	out.Grow(len(data) + 512)
	for _, p := range st.tx.prepend {
		out.WriteString(p + "\r\n")
	}
	out.WriteString(st.receivedHeader(now))
	headerEnd := h.end
	// The added headers go at the end of the header section, before the
	// empty line that separates it from the body.
	sepLen := 0
	if bytes.HasSuffix(data[:headerEnd], []byte("\r\n\r\n")) || (headerEnd == 2 && bytes.HasPrefix(data, []byte("\r\n"))) {
		sepLen = 2
	} else if bytes.HasSuffix(data[:headerEnd], []byte("\n\n")) || (headerEnd == 1 && data[0] == '\n') {
		sepLen = 1
	}
	out.Write(data[:headerEnd-sepLen])
	if headerEnd-sepLen > 0 && data[headerEnd-sepLen-1] != '\n' {
		out.WriteString("\r\n") // a header section without a final line end
	}
	messageID := h.messageID
	if s.AlwaysAddMissingHeaders || st.local {
		if !h.hasMsgID {
			messageID = fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), st.tx.id, s.Hostname)
			out.WriteString("Message-Id: " + messageID + "\r\n")
		}
		if !h.hasDate {
			out.WriteString("Date: " + mailDate(now) + "\r\n")
		}
	}
	out.Write(data[headerEnd-sepLen:])
	if messageID != "" {
		s.Log.Printf("cleanup", "%s: message-id=%s", st.tx.id, truncate(messageID, 200))
	}
	return &cleanMessage{body: out.Bytes(), messageID: messageID}, nil
}

// mailDate formats a date the way Postfix's mail_date() does:
// "Mon,  3 Nov 2025 05:17:55 +0900 (JST)".
func mailDate(t time.Time) string { return t.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)") }

// receivedHeader builds Postfix's Received: header, CRLF-terminated.
func (st *connState) receivedHeader(now time.Time) string {
	s := st.srv.s
	helo := st.helo
	if helo == "" {
		helo = st.client.Name
	}
	addr := st.client.Addr.String()
	if st.client.Addr.Is6() {
		addr = "IPv6:" + addr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s (%s [%s])\r\n", helo, st.client.Name, addr)
	if cs, ok := st.conn.TLSConnectionState(); ok {
		bits := cipherBits(cs.CipherSuite)
		fmt.Fprintf(&b, "\t(using %s with cipher %s (%d/%d bits))\r\n", tlsVersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), bits, bits)
		if len(cs.PeerCertificates) == 0 {
			b.WriteString("\t(No client certificate requested)\r\n")
		}
	}
	if s.SASLAuthenticatedHeader && st.saslUser != "" {
		fmt.Fprintf(&b, "\t(Authenticated sender: %s)\r\n", st.saslUser)
	}
	fmt.Fprintf(&b, "\tby %s (yubin) with %s id %s", s.Hostname, st.receivedProto(), st.tx.id)
	if len(st.tx.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>; %s\r\n", givenAddr(st.tx.rcpts[0]), mailDate(now))
	} else {
		fmt.Fprintf(&b, ";\r\n\t%s\r\n", mailDate(now))
	}
	return b.String()
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}

// cipherBits is the symmetric key size of a cipher suite, as Postfix logs it.
func cipherBits(id uint16) int {
	name := tls.CipherSuiteName(id)
	switch {
	case strings.Contains(name, "AES_128"):
		return 128
	case strings.Contains(name, "3DES"):
		return 112
	}
	return 256 // AES_256, CHACHA20
}
