package main

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		total, parts int
		want         []int
	}{
		{10, 3, []int{4, 3, 3}},
		{50, 3, []int{17, 17, 16}},
		{9, 3, []int{3, 3, 3}},
		{2, 3, []int{1, 1, 0}},
	} {
		if got := split(tc.total, tc.parts); !slices.Equal(got, tc.want) {
			t.Errorf("split(%d, %d) = %v, want %v", tc.total, tc.parts, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0, 1 * time.Millisecond},
	} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestSourceCount(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{
		{"1\r2\r3\r", 3},
		{"100\r200\r\n", 200},
		{"", 0},
		{"smtp-source: fatal: connect: Connection refused\n", 0},
		{"5\r6\rsmtp-source: warning: something\n", 6},
	} {
		if got := sourceCount([]byte(tc.out)); got != tc.want {
			t.Errorf("sourceCount(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, size := range []int{0, 1, 3, 72, 73, 1000, 20000} {
		p := payload(size)
		if len(p) < size || len(p) > size+3 {
			t.Errorf("payload(%d) has %d bytes", size, len(p))
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\r\n")), []byte("\r\n")) {
			if len(line) > 0 && line[0] == '.' || len(line) > 998 {
				t.Errorf("payload(%d): line %q is not safe to send as is", size, line)
			}
		}
	}
}
