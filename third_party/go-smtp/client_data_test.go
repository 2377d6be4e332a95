package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func writeData(t testing.TB, chunks ...string) string {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	w := &dataWriter{w: bw}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestDataWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"empty", nil, ".\r\n"},
		{"crlf kept", []string{"a\r\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{"bare lf", []string{"a\nb\n"}, "a\r\nb\r\n.\r\n"},
		{"bare cr", []string{"a\rb\r"}, "a\r\nb\r\n.\r\n"},
		{"cr cr lf", []string{"a\r\r\nb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"lf cr", []string{"a\n\rb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"missing final newline", []string{"a"}, "a\r\n.\r\n"},
		{"dot stuffing", []string{".a\n..b\nc.d\n.\n"}, "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n"},
		{"dot after bare cr", []string{"x\r.\r"}, "x\r\n..\r\n.\r\n"},
		{"crlf split across writes", []string{"a\r", "\nb"}, "a\r\nb\r\n.\r\n"},
		{"cr then dot across writes", []string{"a\r", ".b"}, "a\r\n..b\r\n.\r\n"},
		{"dot at start of second write", []string{"a\n", ".b\n"}, "a\r\n..b\r\n.\r\n"},
		{"smuggling attempt", []string{"x\n.\ry\r\n.\nMAIL FROM:<e@v>\n"}, "x\r\n..\r\ny\r\n..\r\nMAIL FROM:<e@v>\r\n.\r\n"},
	}
	for _, tc := range tests {
		if got := writeData(t, tc.chunks...); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestDataWriterReportsErrors(t *testing.T) {
	w := &dataWriter{w: bufio.NewWriterSize(failWriter{}, 16)}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 100)); err == nil {
		t.Fatal("write error not reported")
	}
}

// FuzzDataWriter checks the invariants of the DATA encoding: only CRLF
// line endings, no line "." before the terminator, and the original text
// comes back after undoing dot-stuffing and normalizing line endings.
func FuzzDataWriter(f *testing.F) {
	f.Add("a\nb", 1)
	f.Add(".\r\n.\r.", 2)
	f.Add("\r\r\n\n.", 3)
	f.Fuzz(func(t *testing.T, s string, split int) {
		if split < 0 {
			split = -split
		}
		split %= len(s) + 1
		out := writeData(t, s[:split], s[split:])
		if !bytes.HasSuffix([]byte(out), []byte("\r\n.\r\n")) && out != ".\r\n" {
			t.Fatalf("bad terminator: %q", out)
		}
		body := out[:len(out)-3] // strip ".\r\n"
		for i := 0; i < len(body); i++ {
			switch body[i] {
			case '\r':
				if i+1 >= len(body) || body[i+1] != '\n' {
					t.Fatalf("bare CR at %d in %q", i, out)
				}
			case '\n':
				if i == 0 || body[i-1] != '\r' {
					t.Fatalf("bare LF at %d in %q", i, out)
				}
			}
		}
		var lines []string
		for _, l := range bytes.Split([]byte(body), []byte("\r\n")) {
			if bytes.Equal(l, []byte(".")) {
				t.Fatalf("unstuffed dot line in %q", out)
			}
			lines = append(lines, string(bytes.TrimPrefix(l, []byte("."))))
		}
		// Normalize the input the same way and compare.
		norm := bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
		want := string(norm)
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want += "\n"
		}
		got := ""
		for i, l := range lines {
			if i == len(lines)-1 && l == "" {
				break
			}
			got += l + "\n"
		}
		if got != want {
			t.Fatalf("round trip: got %q, want %q (wire %q)", got, want, out)
		}
	})
}
