package mailbox

import (
	"strings"
	"testing"
)

func TestHasDeliveredTo(t *testing.T) {
	tests := []struct {
		name, msg string
		want      bool
	}{
		{"match", "Delivered-To: joe@example.com\r\nSubject: x\r\n\r\nbody\r\n", true},
		{"case", "delivered-to:  JOE@Example.COM \nSubject: x\n\nbody\n", true},
		{"other", "Delivered-To: ann@example.com\n\nbody\n", false},
		{"in body", "Subject: x\n\nDelivered-To: joe@example.com\n", false},
		{"folded", "Delivered-To:\n joe@example.com\n\n", true},
		{"last header no body", "Subject: y\nDelivered-To: joe@example.com", true},
		{"prefix only", "Delivered-To: joe@example.com.evil\n\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		got, err := HasDeliveredTo(strings.NewReader(tt.msg), "joe@example.com")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
