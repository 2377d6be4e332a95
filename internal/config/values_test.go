package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ,, ", nil},
		{"a", []string{"a"}},
		{"a,b c\td\ne", []string{"a", "b", "c", "d", "e"}},
		{"$myhostname, localhost.$mydomain, localhost", []string{"$myhostname", "localhost.$mydomain", "localhost"}},
		{"check_client_access inline:{ 1.2.3.4=REJECT, 5.6.7.8=OK }, permit",
			[]string{"check_client_access", "inline:{ 1.2.3.4=REJECT, 5.6.7.8=OK }", "permit"}},
		{"a {b, {c d}} e", []string{"a", "{b, {c d}}", "e"}},
		{"unbalanced {a, b", []string{"unbalanced", "{a, b"}},
		{"stray } a", []string{"stray", "}", "a"}},
	}
	for _, tt := range tests {
		if got := SplitList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"yes", true, false}, {"YES", true, false}, {"no", false, false}, {"No", false, false},
		{"", false, true}, {"true", false, true}, {"1", false, true}, {"y", false, true},
	}
	for _, tt := range tests {
		got, err := ParseBool(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false}, {"50", 50, false}, {"-1", -1, false}, {"007", 7, false},
		{"", 0, true}, {"+5", 0, true}, {"5k", 0, true}, {" 5", 0, true}, {"1.5", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseInt(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseInt(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		unit    byte
		want    time.Duration
		wantErr bool
	}{
		{"300s", 's', 300 * time.Second, false},
		{"300", 's', 300 * time.Second, false},
		{"5", 'd', 5 * 24 * time.Hour, false},
		{"5d", 's', 5 * 24 * time.Hour, false},
		{"4h", 'd', 4 * time.Hour, false},
		{"10m", 's', 10 * time.Minute, false},
		{"2w", 's', 14 * 24 * time.Hour, false},
		{"0h", 'h', 0, false},
		{"0", 's', 0, false},
		{"", 's', 0, true},
		{"s", 's', 0, true},
		{"5x", 's', 0, true},
		{"5S", 's', 0, true},
		{"-5s", 's', 0, true},
		{"1h30m", 's', 0, true},
		{"1.5h", 's', 0, true},
		{"99999999999999999w", 's', 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in, tt.unit)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q, %c) = %v, %v; want %v, err=%v", tt.in, tt.unit, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"10240000", 10240000, false}, {"0", 0, false},
		{"", 0, true}, {"-1", 0, true}, {"10M", 0, true}, {"1e6", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "1", -1}, {"3.6", "2", 1}, {"3.10", "3.9", 1}, {"3.6", "3.6.0", 0}, {"3.6.1", "3.6", 1},
	}
	for _, tt := range tests {
		a, errA := parseLevel(tt.a)
		b, errB := parseLevel(tt.b)
		if errA != nil || errB != nil {
			t.Fatalf("parseLevel(%q, %q): %v %v", tt.a, tt.b, errA, errB)
		}
		if got := a.compare(b); got != tt.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "3.", "3.6.1.2", "-1", "3.x"} {
		if _, err := parseLevel(bad); err == nil {
			t.Errorf("parseLevel(%q) succeeded", bad)
		}
	}
}

func TestExpandFileList(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner")
	outer := filepath.Join(dir, "outer")
	loop := filepath.Join(dir, "loop")
	write := func(name, text string) {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(inner, "# domains\nc.example\n\n  d.example, e.example\n")
	write(outer, "b.example\n"+inner+"\n")
	write(loop, loop+"\n")

	got, err := expandFileList("a.example, "+outer+" hash:/etc/postfix/relay_domains", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.example", "b.example", "c.example", "d.example", "e.example", "hash:/etc/postfix/relay_domains"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("expandFileList = %q, want %q", got, want)
	}
	if _, err := expandFileList(filepath.Join(dir, "missing"), 0); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := expandFileList(loop, 0); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("self-including file: err = %v", err)
	}
}
