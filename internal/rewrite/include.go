package rewrite

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxIncludeSize bounds a :include: file; a mailing list of that size is
// already far beyond what an alias file should hold.
const maxIncludeSize = 1 << 20

// include expands ":include:path" for alias name, with local(8)'s checks:
// an absolute path to a regular file that is not world writable. Problems
// fail this branch with 5.3.5, as Postfix bounces them. A file already
// read in this expansion is skipped (local(8)'s duplicate filter), which
// also ends include loops.
func (x *expansion) include(path, name string, f frame) error {
	owner := name + "@" + normalizeDomain(x.r.s.MyHostname)
	configErr := func(why string, cause error) {
		x.fail(owner, expandErr(ErrInclude, path, "5.3.5", "mail system configuration error: "+why, cause))
	}
	if !filepath.IsAbs(path) {
		configErr(":include: uses a relative path", nil)
		return nil
	}
	if x.included[path] {
		return nil
	}
	x.included[path] = true
	if f.aliasDepth >= maxAliasDepth {
		x.fail(owner, expandErr(ErrAliasLoop, path, "5.4.6", ":include: nesting limit exceeded", nil))
		return nil
	}
	data, why, err := readIncludeFile(path)
	if why != "" {
		configErr(why, err)
		return nil
	}
	child := f
	child.aliasDepth, child.expFrom = f.aliasDepth+1, name
	for _, t := range parseIncludeFile(data) {
		if err := x.aliasTarget(t, name, child, "include"); err != nil {
			return err
		}
	}
	return nil
}

// readIncludeFile reads a :include: file after checking it; why is
// non-empty when it is unusable.
func readIncludeFile(path string) (data []byte, why string, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "cannot open include file", err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, "cannot stat include file", err
	}
	switch {
	case !st.Mode().IsRegular():
		return nil, "include file is not a regular file", nil
	case st.Mode().Perm()&0o002 != 0:
		return nil, "include file is world writable", nil
	}
	data, err = io.ReadAll(io.LimitReader(fh, maxIncludeSize+1))
	if err != nil {
		return nil, "cannot read include file", err
	}
	if len(data) > maxIncludeSize {
		return nil, fmt.Sprintf("include file is larger than %d bytes", maxIncludeSize), nil
	}
	return data, "", nil
}

// parseIncludeFile returns the targets of a :include: file: one or more
// per line, comma separated; blank lines and lines starting with '#' are
// ignored.
func parseIncludeFile(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIncludeSize+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, splitAliasValue(line)...)
	}
	return out
}
