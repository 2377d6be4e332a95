// Package sinkdump reads the message files that Postfix's smtp-sink writes
// with -d (one file per received message), so that tests and benchmarks
// can tell which messages arrived and how often.
package sinkdump

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var (
	messageIDRE = regexp.MustCompile(`(?mi)^Message-ID: (<[^>]+>)`)
	headerEndRE = regexp.MustCompile(`\r?\n\r?\n`)
)

// CountMessageIDs counts the messages in dir per Message-ID header (in the
// header section: smtp-sink puts its X-Client-Addr and similar lines right
// in front of the message's own headers). A file
// that cannot be read yet (smtp-sink is still writing it) is skipped: the
// next count sees it.
func CountMessageIDs(dir string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, fmt.Errorf("sink dump %s: %w", dir, err)
	}
	got := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if end := headerEndRE.FindIndex(b); end != nil {
			b = b[:end[0]]
		}
		for _, m := range messageIDRE.FindAllSubmatch(b, -1) {
			got[string(m[1])]++
		}
	}
	return got, nil
}
