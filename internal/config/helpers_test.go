package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noFile marks a configuration file that the test directory must not have.
const noFile = "\x00absent"

func testEnv(hostname string) environment {
	return environment{
		hostname: func() (string, error) { return hostname, nil },
		interfaceAddrs: func() ([]net.Addr, error) {
			var out []net.Addr
			for _, c := range []string{"127.0.0.1/8", "192.0.2.10/24", "::1/128", "2001:db8::10/64"} {
				ip, n, err := net.ParseCIDR(c)
				if err != nil {
					return nil, err
				}
				n.IP = ip
				out = append(out, n)
			}
			return out, nil
		},
	}
}

// writeDir creates a configuration directory with the given files.
func writeDir(t *testing.T, mainCF, masterCF string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"main.cf": mainCF, "master.cf": masterCF} {
		if text == noFile {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, mainCF, masterCF string) (*Config, []Warning) {
	t.Helper()
	c, warns, err := load(writeDir(t, mainCF, masterCF), testEnv("mx1.example.com"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c, warns
}

func loadErr(t *testing.T, mainCF, masterCF string) error {
	t.Helper()
	_, _, err := load(writeDir(t, mainCF, masterCF), testEnv("mx1.example.com"))
	if err == nil {
		t.Fatalf("load succeeded, want error\nmain.cf:\n%s\nmaster.cf:\n%s", mainCF, masterCF)
	}
	return err
}

func warningsText(warns []Warning) string {
	var b strings.Builder
	for _, w := range warns {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}
