package pickup

import (
	"os"
	"strings"
	"testing"
	"time"
)

var defaults = Defaults{MyHostname: "mx.example.jp", MyOrigin: "example.jp", MailName: "yubin"}

func TestPrepare(t *testing.T) {
	now := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		env        Envelope
		raw        string
		sender     string
		rcpts      []string
		has, hasnt []string
		err        bool
	}{
		{name: "bare names get myorigin; missing headers added",
			env: Envelope{User: "cron", UID: 1000, Recipients: []string{"root"}}, raw: "Subject: x\n\nbody\n",
			sender: "cron@example.jp", rcpts: []string{"root@example.jp"},
			has: []string{"Received: by mx.example.jp (yubin, from userid 1000)", "Date: ", "Message-Id: <20261124050000.QID@mx.example.jp>", "From: cron@example.jp", "\r\n\r\nbody\r\n"}},
		{name: "-t reads To, Cc and Bcc and removes Bcc",
			env: Envelope{Sender: "a@example.jp", Extract: true}, raw: "To: b@x.example\nCc: c@x.example\nBcc: d@x.example,\n e@x.example\nFrom: a@example.jp\nMessage-ID: <m@x>\n\nhi\n",
			sender: "a@example.jp", rcpts: []string{"b@x.example", "c@x.example", "d@x.example", "e@x.example"},
			has: []string{"To: b@x.example"}, hasnt: []string{"Bcc:", "e@x.example\r\n\r\n", "Message-Id: <2026", "From: a@example.jp\r\nFrom"}},
		{name: "-F sets the full name", env: Envelope{Sender: "a@example.jp", FullName: "Ann", Recipients: []string{"b@x.example"}}, raw: "\nno headers\n",
			sender: "a@example.jp", rcpts: []string{"b@x.example"}, has: []string{"From: Ann <a@example.jp>"}},
		{name: "no recipient", env: Envelope{Sender: "a@example.jp"}, raw: "Subject: x\n\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.env, []byte(tt.raw), defaults, "QID", now)
			if tt.err {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Sender != tt.sender || strings.Join(p.Recipients, ",") != strings.Join(tt.rcpts, ",") {
				t.Fatalf("sender %q rcpts %v", p.Sender, p.Recipients)
			}
			body := string(p.Body)
			for _, h := range tt.has {
				if !strings.Contains(body, h) {
					t.Errorf("body lacks %q:\n%s", h, body)
				}
			}
			for _, h := range tt.hasnt {
				if strings.Contains(body, h) {
					t.Errorf("body has %q:\n%s", h, body)
				}
			}
			if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") {
				t.Errorf("bare LF left in %q", body)
			}
		})
	}
}

func TestDropReadPending(t *testing.T) {
	dir := t.TempDir() + "/maildrop"
	env := Envelope{Sender: "a@example.jp", Recipients: []string{"b@x.example"}, UID: 4242}
	path, err := Drop(dir, env, []byte("Subject: x\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dir)
	if st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o733 {
		t.Fatalf("maildrop mode %v", st.Mode())
	}
	files, err := Pending(dir)
	if err != nil || len(files) != 1 || files[0] != path {
		t.Fatalf("pending %v %v", files, err)
	}
	got, msg, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	// The uid is the file owner's, not what the file says.
	if got.UID != os.Getuid() || got.Sender != "a@example.jp" || string(msg) != "Subject: x\n\nbody\n" {
		t.Fatalf("read %+v %q", got, msg)
	}
}
