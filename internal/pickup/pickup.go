// Package pickup is yubin's maildrop: when sendmail cannot reach a running
// node it leaves the message here, and the node submits it when it starts,
// as Postfix's postdrop and pickup(8) do. It also holds the cleanup of locally
// submitted mail: recipients from headers (-t), and the From:, Date:,
// Message-ID: and Received: headers Postfix adds.
package pickup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Envelope is what sendmail knows about a message beyond its content.
type Envelope struct {
	Sender     string   `json:"sender"`    // -f; empty means the user's address
	Recipients []string `json:"rcpts"`     // command-line recipients
	Extract    bool     `json:"extract"`   // -t: recipients from To/Cc/Bcc
	FullName   string   `json:"full_name"` // -F
	UID        int      `json:"uid"`       // submitting user
	User       string   `json:"user"`      // login name of UID
	Time       int64    `json:"time"`      // Unix time of submission
}

// Drop writes a message into the maildrop directory: a JSON envelope line
// followed by the raw message. The file appears under its final name only
// once it is complete and on disk.
func Drop(dir string, env Envelope, msg []byte) (string, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// The node makes it when it starts; root may submit before that.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("maildrop: %w", err)
		}
		if err := os.Chmod(dir, os.ModeSticky|0o733); err != nil {
			return "", fmt.Errorf("maildrop: %w", err)
		}
	}
	head, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("maildrop: %w", err)
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	w.Write(head)
	w.WriteByte('\n')
	w.Write(msg)
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("maildrop: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("maildrop: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("maildrop: %w", err)
	}
	name := filepath.Join(dir, strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.Itoa(os.Getpid()))
	if err := os.Rename(f.Name(), name); err != nil {
		return "", fmt.Errorf("maildrop: %w", err)
	}
	return name, nil
}

// Read parses a maildrop file. The submitting user is the file's owner:
// the maildrop is writable by everyone, so the uid written inside the file
// is not trusted.
func Read(path string) (Envelope, []byte, error) {
	var env Envelope
	f, err := os.Open(path)
	if err != nil {
		return env, nil, fmt.Errorf("maildrop file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return env, nil, fmt.Errorf("maildrop file: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return env, nil, fmt.Errorf("maildrop file: %w", err)
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return env, nil, fmt.Errorf("maildrop file %s: no envelope", path)
	}
	if err := json.Unmarshal(b[:i], &env); err != nil {
		return env, nil, fmt.Errorf("maildrop file %s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		env.UID = int(sys.Uid)
		if u, err := user.LookupId(strconv.Itoa(env.UID)); err == nil {
			env.User = u.Username
		} else {
			env.User = ""
		}
	}
	return env, b[i+1:], nil
}

// Pending lists complete maildrop files, oldest first.
func Pending(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildrop: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Prepared is a locally submitted message ready for the queue.
type Prepared struct {
	Sender     string
	Recipients []string
	Body       []byte // CRLF line ends, headers completed
	MessageID  string
}

// Defaults are the names cleanup uses for local submissions.
type Defaults struct {
	MyHostname string
	MyOrigin   string
	MailName   string // "yubin"
}

// Prepare turns a raw message from sendmail into a queue entry: it resolves
// the sender, takes recipients from the headers with -t (removing Bcc:),
// adds Received:, and From:, Date: and Message-ID: when they are missing.
func Prepare(env Envelope, raw []byte, d Defaults, queueID string, now time.Time) (*Prepared, error) {
	raw = toCRLF(raw)
	headerEnd := bytes.Index(raw, []byte("\r\n\r\n"))
	var header, body []byte
	switch {
	case headerEnd >= 0:
		header, body = raw[:headerEnd+2], raw[headerEnd+4:]
	case len(raw) > 0 && !looksLikeHeader(raw):
		header, body = nil, raw
	default:
		header, body = raw, nil
	}
	msg, _ := mail.ReadMessage(bytes.NewReader(append(append([]byte{}, header...), "\r\n"...)))
	var h mail.Header
	if msg != nil {
		h = msg.Header
	}
	p := &Prepared{Sender: env.Sender}
	if p.Sender == "" && env.User != "" {
		p.Sender = env.User
	}
	if p.Sender != "" && !strings.Contains(p.Sender, "@") {
		p.Sender += "@" + d.MyOrigin
	}
	p.Recipients = append(p.Recipients, env.Recipients...)
	if env.Extract {
		for _, k := range []string{"To", "Cc", "Bcc"} {
			if h == nil || h.Get(k) == "" {
				continue
			}
			list, err := h.AddressList(k)
			if err != nil {
				return nil, fmt.Errorf("sendmail -t: bad %s: header: %w", k, err)
			}
			for _, a := range list {
				p.Recipients = append(p.Recipients, a.Address)
			}
		}
		header = dropHeader(header, "Bcc")
	}
	for i, r := range p.Recipients {
		if !strings.Contains(r, "@") {
			p.Recipients[i] = r + "@" + d.MyOrigin
		}
	}
	if len(p.Recipients) == 0 {
		return nil, errors.New("no recipient addresses found in message header")
	}

	var add bytes.Buffer
	fmt.Fprintf(&add, "Received: by %s (%s, from userid %d)\r\n\tid %s; %s\r\n",
		d.MyHostname, d.MailName, env.UID, queueID, now.Format(time.RFC1123Z))
	if h == nil || h.Get("Date") == "" {
		fmt.Fprintf(&add, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	p.MessageID = ""
	if h != nil {
		p.MessageID = strings.Trim(h.Get("Message-Id"), "<> ")
	}
	if p.MessageID == "" {
		p.MessageID = fmt.Sprintf("%s.%s@%s", now.UTC().Format("20060102150405"), queueID, d.MyHostname)
		fmt.Fprintf(&add, "Message-Id: <%s>\r\n", p.MessageID)
	}
	if h == nil || h.Get("From") == "" {
		from := p.Sender
		if from == "" {
			from = "MAILER-DAEMON@" + d.MyHostname
		}
		if env.FullName != "" {
			fmt.Fprintf(&add, "From: %s <%s>\r\n", env.FullName, from)
		} else {
			fmt.Fprintf(&add, "From: %s\r\n", from)
		}
	}
	var out bytes.Buffer
	out.Grow(add.Len() + len(header) + len(body) + 2)
	out.Write(add.Bytes())
	out.Write(header)
	out.WriteString("\r\n")
	out.Write(body)
	p.Body = out.Bytes()
	return p, nil
}

func looksLikeHeader(b []byte) bool {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	i := bytes.IndexByte(line, ':')
	return i > 0 && !bytes.ContainsAny(line[:i], " \t")
}

// toCRLF turns every bare LF or CR into CRLF, as the queue stores bodies.
func toCRLF(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/40)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out.WriteString("\r\n")
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out.WriteString("\r\n")
		default:
			out.WriteByte(c)
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

// dropHeader removes every field named name (with its continuation lines).
func dropHeader(header []byte, name string) []byte {
	var out bytes.Buffer
	skipping := false
	for _, line := range bytes.SplitAfter(header, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !skipping {
				out.Write(line)
			}
			continue
		}
		i := bytes.IndexByte(line, ':')
		skipping = i > 0 && strings.EqualFold(string(line[:i]), name)
		if !skipping {
			out.Write(line)
		}
	}
	return out.Bytes()
}
