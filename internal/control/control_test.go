package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCallServe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	s := NewServer()
	var seen Caller
	s.Handle("echo", func(_ context.Context, c Caller, req *Request) (any, error) {
		seen = c
		return map[string]string{"args": string(req.Args), "body": string(req.Body)}, nil
	})
	s.Handle("fail", func(context.Context, Caller, *Request) (any, error) { return nil, errors.New("refused") })
	s.Handle("panic", func(context.Context, Caller, *Request) (any, error) { panic("boom") })
	if err := s.Listen(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background())
	defer s.Close()
	if st, _ := os.Stat(sock); st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v", st.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out map[string]string
	if err := Call(ctx, sock, "echo", []string{"a"}, []byte("body"), &out); err != nil {
		t.Fatal(err)
	}
	if out["args"] != `["a"]` || out["body"] != "body" || int(seen.UID) != os.Getuid() || seen.PID != int32(os.Getpid()) {
		t.Fatalf("out %v caller %+v", out, seen)
	}
	for op, want := range map[string]string{"fail": "refused", "panic": "internal error: boom", "nope": `unknown operation "nope"`} {
		if err := Call(ctx, sock, op, nil, nil, nil); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", op, err, want)
		}
	}
	// A second server on the same socket refuses to start.
	if err := NewServer().Listen(sock, 0o660); err == nil {
		t.Fatal("two servers on one socket")
	}
	if err := Call(ctx, filepath.Join(t.TempDir(), "none.sock"), "echo", nil, nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no server: %v", err)
	}
}
