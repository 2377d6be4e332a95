package mailbox

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCopy(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.Local)
	env := Envelope{Sender: "joe@example.com", OrigRecipient: "Info@Example.com", Recipient: "ann@example.com", Time: when}
	msg := "Subject: hi\r\n\r\nFrom here\r\n.dot\r\nlast"
	tests := []struct {
		name  string
		env   Envelope
		flags CopyFlags
		want  string
	}{
		{"plain", env, 0, "Subject: hi\n\nFrom here\n.dot\nlast\n"},
		{"mbox", env, MboxFlags,
			"From joe@example.com  Tue Jan  2 03:04:05 2024\n" +
				"Return-Path: <joe@example.com>\nX-Original-To: Info@Example.com\nDelivered-To: ann@example.com\n" +
				"Subject: hi\n\n>From here\n.dot\nlast\n\n"},
		{"maildir", env, MaildirFlags,
			"Return-Path: <joe@example.com>\nX-Original-To: Info@Example.com\nDelivered-To: ann@example.com\n" +
				"Subject: hi\n\nFrom here\n.dot\nlast\n"},
		{"dot and crlf", Envelope{EOL: "\r\n"}, DotStuff, "Subject: hi\r\n\r\nFrom here\r\n..dot\r\nlast\r\n"},
		{"null sender", Envelope{Recipient: "a@b", Time: when}, FromLine | ReturnPath,
			"From MAILER-DAEMON  Tue Jan  2 03:04:05 2024\nReturn-Path: <>\nSubject: hi\n\nFrom here\n.dot\nlast\n"},
		{"no orig", Envelope{Sender: "s@x", Recipient: "a@b"}, OrigRcptHeader | DeliveredTo,
			"Delivered-To: a@b\nSubject: hi\n\nFrom here\n.dot\nlast\n"},
		{"quoted sender", Envelope{Sender: "a b@x"}, ReturnPath, "Return-Path: <\"a b\"@x>\nSubject: hi\n\nFrom here\n.dot\nlast\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Copy(&b, strings.NewReader(msg), tt.env, tt.flags); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}

// TestCopyLongLine checks that quoting applies only at real line starts
// when a line is longer than the read buffer.
func TestCopyLongLine(t *testing.T) {
	long := strings.Repeat("x", 70*1024) + "From inside\n"
	var b bytes.Buffer
	if err := Copy(&b, strings.NewReader(long+"From start\n"), Envelope{}, QuoteFrom); err != nil {
		t.Fatal(err)
	}
	if want := long + ">From start\n"; b.String() != want {
		t.Errorf("long line mangled: got %d bytes, want %d", b.Len(), len(want))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space") }

func TestCopyErrors(t *testing.T) {
	err := Copy(io.Discard, failingReader{}, Envelope{}, 0)
	if !errors.Is(err, ErrRead) {
		t.Errorf("read failure: got %v, want ErrRead", err)
	}
	err = Copy(failingWriter{}, strings.NewReader(strings.Repeat("line\n", 100000)), Envelope{}, 0)
	if err == nil || errors.Is(err, ErrRead) {
		t.Errorf("write failure: got %v, want a write error", err)
	}
}

func FuzzCopy(f *testing.F) {
	f.Add("From x\n.y\r\nz", uint(MboxFlags))
	f.Add("", uint(0))
	f.Fuzz(func(t *testing.T, msg string, flags uint) {
		flags &= uint(QuoteFrom | DotStuff | BlankLine)
		var b bytes.Buffer
		if err := Copy(&b, strings.NewReader(msg), Envelope{}, CopyFlags(flags)); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if msg != "" && !strings.HasSuffix(out, "\n") {
			t.Fatalf("output %q not terminated", out)
		}
		if flags == 0 {
			// Lines keep their text; only a CR before LF is dropped.
			segs := strings.Split(msg, "\n")
			if segs[len(segs)-1] == "" {
				segs = segs[:len(segs)-1]
			}
			var want strings.Builder
			for i, s := range segs {
				if i < len(segs)-1 || strings.HasSuffix(msg, "\n") {
					s = strings.TrimSuffix(s, "\r")
				}
				want.WriteString(s + "\n")
			}
			if out != want.String() {
				t.Fatalf("Copy(%q) = %q, want %q", msg, out, want.String())
			}
		}
		if CopyFlags(flags)&QuoteFrom != 0 && (strings.HasPrefix(out, "From ") || strings.Contains(out, "\nFrom ")) {
			t.Fatalf("unquoted From_ line in %q", out)
		}
	})
}
