package maillog

import (
	"bytes"
	"regexp"
	"testing"
	"time"
)

func TestFormatDelay(t *testing.T) {
	tests := map[time.Duration]string{
		0:                        "0",
		5 * time.Millisecond:     "0",
		10 * time.Millisecond:    "0.01",
		300 * time.Millisecond:   "0.3",
		345 * time.Millisecond:   "0.34",
		1234 * time.Millisecond:  "1.2",
		2 * time.Second:          "2",
		9600 * time.Millisecond:  "9.6",
		12500 * time.Millisecond: "13",
		-time.Second:             "0",
	}
	for d, want := range tests {
		if got := FormatDelay(d); got != want {
			t.Errorf("FormatDelay(%v) = %q, want %q", d, got, want)
		}
	}
	if got := Delays(70*time.Millisecond, 10*time.Millisecond, 150*time.Millisecond, 110*time.Millisecond); got != "0.07/0.01/0.15/0.11" {
		t.Errorf("Delays = %q", got)
	}
}

func TestPrintf(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, "yubin", "mx1.example.com")
	l.SetClock(func() time.Time { return time.Date(2026, 11, 4, 5, 17, 55, 0, time.UTC) })
	l.Printf("smtpd", "%s: client=%s", "3F2A81C0D4E", "localhost[127.0.0.1]")
	if !regexp.MustCompile(`^Nov  4 05:17:55 mx1 yubin/smtpd\[\d+\]: 3F2A81C0D4E: client=localhost\[127\.0\.0\.1\]\n$`).MatchString(b.String()) {
		t.Fatalf("line %q", b.String())
	}
	var nilLogger *Logger
	nilLogger.Printf("smtpd", "ignored")
}
