package mailbox

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxHeaderBytes bounds how much of a message HasDeliveredTo reads; a
// header section larger than this is not plausible mail.
const maxHeaderBytes = 1 << 20

// HasDeliveredTo reports whether the header section of the message in r
// has a "Delivered-To:" header whose value equals addr, compared without
// regard to case, as Postfix's delivered_hdr_find() does. Folded header
// lines are unfolded before comparing.
func HasDeliveredTo(r io.Reader, addr string) (bool, error) {
	br := bufio.NewReader(io.LimitReader(r, maxHeaderBytes))
	want := strings.ToLower(strings.TrimSpace(addr))
	var cur strings.Builder
	check := func() bool {
		h := cur.String()
		cur.Reset()
		name, value, ok := strings.Cut(h, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Delivered-To") {
			return false
		}
		return strings.ToLower(strings.TrimSpace(value)) == want
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("%w: %w", ErrRead, err)
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if line == "" && err == io.EOF {
			return check(), nil
		}
		if trimmed == "" { // end of headers
			return check(), nil
		}
		if trimmed[0] == ' ' || trimmed[0] == '\t' {
			cur.WriteString(trimmed)
		} else {
			if check() {
				return true, nil
			}
			cur.WriteString(trimmed)
		}
		if err == io.EOF {
			return check(), nil
		}
	}
}
