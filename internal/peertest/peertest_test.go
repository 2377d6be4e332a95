package peertest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMetricValue(t *testing.T) {
	fams := ParseMetrics(t, `# TYPE c_total counter
c_total{kind="a"} 1
c_total{kind="b",extra="x"} 2
# TYPE g gauge
g 7
# TYPE h histogram
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 4
h_count 3
`)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"c_total", map[string]string{"kind": "b"}, 2, true},
		{"c_total", nil, 1, true},                                         // the first sample
		{"c_total", map[string]string{"kind": "a", "extra": ""}, 1, true}, // a missing label is ""
		{"c_total", map[string]string{"kind": "a", "extra": "x"}, 0, false},
		{"c_total", map[string]string{"kind": "z"}, 0, false},
		{"g", nil, 7, true},
		{"h", nil, 3, true},
		{"absent", nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := MetricValue(fams, tt.name, tt.labels)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s%v = %v %v, want %v %v", tt.name, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
}

// The socket speaks Dovecot's auth protocol: it greets with VERSION 1.
func TestStartDovecotAuth(t *testing.T) {
	socket := StartDovecotAuth(t, "u:{PLAIN}p\n")
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "VERSION\t1\t") {
		t.Fatalf("greeting %q %v", line, err)
	}
}
