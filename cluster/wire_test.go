package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/yubin-mta/yubin/queue"
)

func rawRequest(hdr string, data string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(hdr)))
	return append(append(b, hdr...), data...)
}

func TestDecodeRequest(t *testing.T) {
	for _, c := range []struct {
		name  string
		proto byte
		in    []byte
		op    string // "" when an error is expected
	}{
		{"apply", protoForward, rawRequest(`{"op":"apply","timeout_ms":1000}`, "cmd"), opApply},
		{"apply without data", protoForward, rawRequest(`{"op":"apply","timeout_ms":1000}`, ""), ""},
		{"apply on member proto", protoMember, rawRequest(`{"op":"apply","timeout_ms":1000}`, "cmd"), ""},
		{"join on forward proto", protoForward, rawRequest(`{"op":"join","name":"a","addr":"127.0.0.1:1","timeout_ms":1}`, ""), ""},
		{"join", protoMember, rawRequest(`{"op":"join","name":"a","addr":"127.0.0.1:1","timeout_ms":1}`, ""), opJoin},
		{"join bad name", protoMember, rawRequest(`{"op":"join","name":"a b","addr":"127.0.0.1:1","timeout_ms":1}`, ""), ""},
		{"join bad addr", protoMember, rawRequest(`{"op":"join","name":"a","addr":"127.0.0.1","timeout_ms":1}`, ""), ""},
		{"join port 0", protoMember, rawRequest(`{"op":"join","name":"a","addr":"127.0.0.1:0","timeout_ms":1}`, ""), ""},
		{"leave", protoMember, rawRequest(`{"op":"leave","name":"a","timeout_ms":1}`, ""), opLeave},
		{"leave no name", protoMember, rawRequest(`{"op":"leave","timeout_ms":1}`, ""), ""},
		{"barrier", protoMember, rawRequest(`{"op":"barrier","timeout_ms":60000}`, ""), opBarrier},
		{"status", protoMember, rawRequest(`{"op":"status","timeout_ms":5}`, ""), opStatus},
		{"status with data", protoMember, rawRequest(`{"op":"status","timeout_ms":5}`, "x"), ""},
		{"unknown op", protoMember, rawRequest(`{"op":"drop","timeout_ms":5}`, ""), ""},
		{"no timeout", protoMember, rawRequest(`{"op":"status"}`, ""), ""},
		{"timeout too long", protoMember, rawRequest(`{"op":"status","timeout_ms":60001}`, ""), ""},
		{"negative timeout", protoMember, rawRequest(`{"op":"status","timeout_ms":-1}`, ""), ""},
		{"raft proto", protoRaft, rawRequest(`{"op":"status","timeout_ms":5}`, ""), ""},
		{"bad json", protoMember, rawRequest(`{"op":`, ""), ""},
		{"header past end", protoMember, []byte{50, '{'}, ""},
		{"empty", protoMember, nil, ""},
		{"huge header", protoMember, binary.AppendUvarint(nil, 1<<40), ""},
	} {
		req, err := decodeRequest(c.proto, c.in)
		switch {
		case c.op == "" && err == nil:
			t.Errorf("%s: accepted %+v", c.name, req)
		case c.op != "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.op != "" && req.Op != c.op:
			t.Errorf("%s: op %q", c.name, req.Op)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	in := &request{Op: opApply, TimeoutMS: 1500, Data: []byte("\x01\x01binary\x00data")}
	b, err := encodeRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRequest(protoForward, b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Op != in.Op || out.TimeoutMS != in.TimeoutMS || !bytes.Equal(out.Data, in.Data) {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestReplyCarriesApplyResult(t *testing.T) {
	dup := queue.ApplyResult{Err: fmt.Errorf("%w: AAAAAAAAAA01", queue.ErrDuplicateID)}
	for _, res := range []queue.ApplyResult{
		{Count: 2, IDs: []string{"AAAAAAAAAA01", "AAAAAAAAAA02"}},
		{Count: 1, Removed: true, IDs: []string{"AAAAAAAAAA01"}},
		dup,
		{Err: errors.New("disk full")},
	} {
		rep := resultReply(res, 42)
		b, err := encodeReply(&rep)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeReply(b)
		if err != nil {
			t.Fatal(err)
		}
		got := back.result()
		if back.Index != 42 || got.Count != res.Count || got.Removed != res.Removed || strings.Join(got.IDs, ",") != strings.Join(res.IDs, ",") {
			t.Errorf("result %+v came back as %+v (index %d)", res, got, back.Index)
		}
		if (got.Err == nil) != (res.Err == nil) || got.Err != nil && got.Err.Error() != res.Err.Error() {
			t.Errorf("error %v came back as %v", res.Err, got.Err)
		}
		if errors.Is(res.Err, queue.ErrDuplicateID) != errors.Is(got.Err, queue.ErrDuplicateID) {
			t.Errorf("errors.Is lost for %v", res.Err)
		}
	}
}

func TestDecodeReply(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"code":"ok","index":3}`, true},
		{`{"code":"not_leader","leader":"127.0.0.1:7000"}`, true},
		{`{"code":"not_leader","leader":"nonsense"}`, false},
		{`{"code":"maybe"}`, false},
		{`{}`, false},
		{`[`, false},
	} {
		if _, err := decodeReply([]byte(c.in)); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.in, err)
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("y"), 70000)} {
		buf.Reset()
		if err := writeFrame(&buf, p); err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(&buf)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("frame of %d bytes: %d bytes, %v", len(p), len(got), err)
		}
	}
	for name, in := range map[string][]byte{
		"short header": {0, 0},
		"short body":   {0, 0, 0, 5, 'a'},
		"too large":    {0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := readFrame(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(byte(protoMember), rawRequest(`{"op":"join","name":"a","addr":"127.0.0.1:1","timeout_ms":1}`, ""))
	f.Add(byte(protoForward), rawRequest(`{"op":"apply","timeout_ms":1000}`, "cmd"))
	f.Fuzz(func(t *testing.T, proto byte, b []byte) {
		req, err := decodeRequest(proto, b)
		if err != nil {
			return
		}
		// Whatever is accepted is well-formed.
		if req.TimeoutMS <= 0 || req.timeout() > maxRequestTimeout {
			t.Fatalf("accepted timeout %d", req.TimeoutMS)
		}
		if req.Op == opJoin && (validateName(req.Name) != nil || validateAddr(req.Addr) != nil) {
			t.Fatalf("accepted join %+v", req)
		}
		if (req.Op == opApply) != (proto == protoForward) {
			t.Fatalf("accepted %q on protocol %q", req.Op, proto)
		}
		again, err := encodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeRequest(proto, again); err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"code":"ok","index":3,"count":1,"ids":["AAAAAAAAAA01"]}`))
	f.Add([]byte(`{"code":"not_leader","leader":"127.0.0.1:7000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := decodeReply(b)
		if err != nil {
			return
		}
		_ = rep.result()
		if rep.LeaderAddr != "" && validateAddr(rep.LeaderAddr) != nil {
			t.Fatalf("accepted leader %q", rep.LeaderAddr)
		}
	})
}
