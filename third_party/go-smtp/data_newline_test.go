package smtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// readAllSmall reads r with a buffer of size n to exercise partial reads.
func readAllSmall(r io.Reader, n int) (string, error) {
	var out []byte
	buf := make([]byte, n)
	for i := 0; i < 10000; i++ {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return string(out), nil
		}
		if err != nil {
			return string(out), err
		}
	}
	return string(out), errors.New("reader made no progress")
}

func TestDataReaderPolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy BareNewlinePolicy
		in     string
		want   string
		err    error
	}{
		{"allow keeps bytes", BareNewlineAllow, "a\nb\r\n.\r\n", "a\nb\r\n", nil},
		{"allow dot unstuffing", BareNewlineAllow, "..x\r\n.\r\n", ".x\r\n", nil},
		{"normalize bare LF", BareNewlineNormalize, "a\nb\r\n.\r\n", "a\r\nb\r\n", nil},
		{"normalize lone dot after bare LF is content", BareNewlineNormalize, "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", nil},
		{"normalize keeps bare CR", BareNewlineNormalize, "a\rb\r\n.\r\n", "a\rb\r\n", nil},
		{"CR before CRLF dot CRLF ends data", BareNewlineAllow, "a\r\r\n.\r\nX", "a\r\r\n", nil},
		{"reject bare LF", BareNewlineReject, "a\nb\r\n.\r\n", "a", ErrBareLF},
		{"reject bare CR", BareNewlineReject, "a\rb\r\n.\r\n", "a\r", ErrBareCR},
		{"reject CR after dot", BareNewlineReject, "a\r\n.\rb\r\n.\r\n", "a\r\n", ErrBareCR},
		{"reject NUL", BareNewlineReject, "a\x00\r\n.\r\n", "a", ErrNUL},
		{"reject clean", BareNewlineReject, "a\r\nb\r\n.\r\n", "a\r\nb\r\n", nil},
		{"unterminated", BareNewlineReject, "a\r\n", "a\r\n", io.ErrUnexpectedEOF},
	} {
		for _, size := range []int{1, 2, 3, 4096} {
			r := &dataReader{r: bufio.NewReader(strings.NewReader(tc.in)), policy: tc.policy}
			got, err := readAllSmall(r, size)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("%s (buffer %d): got %q, %v; want %q, %v", tc.name, size, got, err, tc.want, tc.err)
			}
		}
	}
}

func FuzzDataReaderSingleEnd(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "a\n.\n", "a\r\n.\r\r\n", "\r\r\n.\r\n", "x\x00\r\n.\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, policy := range []BareNewlinePolicy{BareNewlineAllow, BareNewlineNormalize, BareNewlineReject} {
			br := bufio.NewReader(strings.NewReader(in))
			r := &dataReader{r: br, policy: policy}
			out, err := readAllSmall(r, 7)
			if err == nil && !strings.Contains(in, "\r\n.\r\n") && !strings.HasPrefix(in, ".\r\n") {
				t.Fatalf("policy %d: end of data without <CR><LF>.<CR><LF> in %q", policy, in)
			}
			if policy == BareNewlineReject && err == nil && (strings.ContainsAny(out, "\x00")) {
				t.Fatalf("NUL passed the reject policy: %q", out)
			}
		}
	})
}
