package inbound

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/maillog"
)

// pipeListener hands out in-memory connections.
type pipeListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }

// loopbackConn gives a net.Pipe end TCP-looking addresses.
type loopbackConn struct{ net.Conn }

func (loopbackConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (loopbackConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}

// FuzzSession feeds arbitrary bytes to the server as a whole SMTP session.
// The server must not panic, and no DATA may yield more than one message:
// every queued message needs its own <CR><LF>.<CR><LF> in the input. With
// the default bare-newline policy no queued message may contain a bare LF,
// a bare CR or a NUL.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO c.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\ny\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<\"a b\"@example.com> NOTIFY=NEVER\r\nDATA\r\n..\r\n.\r\n",
		"NOOP\r\nVRFY alice\r\nRSET\r\nGET / HTTP/1.0\r\n",
	} {
		f.Add([]byte(seed))
	}
	pol := testPolicy(f, nil)
	f.Fuzz(func(t *testing.T, input []byte) {
		q := &fakeQueue{}
		srv := NewServer(Settings{
			Hostname:       "mx.example.com",
			Log:            maillog.New(io.Discard, "postfix", "mx"),
			Policy:         pol,
			ErrorSleepTime: -1,
			Timeout:        2 * time.Second,
			// Half of the inputs get past the synchronization check, so
			// that pipelined DATA reaches the message reader.
			AllowUnauthPipelining: len(input)%2 == 0,
		}, q)
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		client, server := net.Pipe()
		l.ch <- loopbackConn{server}
		readDone := make(chan struct{})
		go func() {
			io.Copy(io.Discard, client) // replies; ends when client is closed
			close(readDone)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(input) // the server may hang up early
		client.Close()
		<-readDone
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Fatalf("serve: %v", err)
		}
		if n, ends := q.count(), bytes.Count(input, []byte("\r\n.\r\n")); n > ends {
			t.Fatalf("%d messages queued from input with %d end-of-data sequences", n, ends)
		}
		for _, body := range q.bodies {
			if bytes.IndexByte(body, 0) >= 0 || bytes.Count(body, []byte("\n")) != bytes.Count(body, []byte("\r\n")) ||
				bytes.Count(body, []byte("\r")) != bytes.Count(body, []byte("\r\n")) {
				t.Fatalf("queued message with a bare newline or NUL: %q", body)
			}
		}
	})
}

// referenceData is the simplest reader of RFC 5321 DATA that can be right:
// lines end with CRLF only, the message ends at the first line that is a
// lone dot, a leading dot is removed. It reports ok=false for any bare CR,
// bare LF or NUL, a line over 1000 octets, or input that never ends.
func referenceData(in []byte) (body []byte, ok bool) {
	var out bytes.Buffer
	for {
		i := bytes.Index(in, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		line := in[:i]
		in = in[i+2:]
		if bytes.ContainsAny(line, "\r\n\x00") || len(line) > 998 {
			return nil, false
		}
		if string(line) == "." {
			return out.Bytes(), true
		}
		line = bytes.TrimPrefix(line, []byte("."))
		out.Write(line)
		out.WriteString("\r\n")
	}
}

// FuzzDataReader compares the server's DATA reader with referenceData: a
// message the server queues must be what the reference reads (after the
// headers cleanup adds in front), and input the reference refuses must
// never be queued.
func FuzzDataReader(f *testing.F) {
	for _, seed := range []string{
		"Subject: x\r\n\r\nhi\r\n.\r\n", "a\n.\n", "a\r\n..\r\n.\r\n", "a\r\n.\r\r\n.\r\n",
		"\r\r\n.\r\r\n", "x\r\n\x00.\r\n", "a\r.\r\n", "a\r\n.x\r\n.\r\n", ".\r\n",
	} {
		f.Add([]byte(seed))
	}
	pol := testPolicy(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		q := &fakeQueue{}
		srv := NewServer(Settings{
			Hostname:       "mx.example.com",
			Log:            maillog.New(io.Discard, "postfix", "mx"),
			Policy:         pol,
			ErrorSleepTime: -1,
			Timeout:        2 * time.Second,
		}, q)
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		client, server := net.Pipe()
		l.ch <- loopbackConn{server}
		replies := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			replies <- b
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		// Message text sent before the 354 is refused by the pipelining
		// check; a short pause stands in for waiting for the reply. (If the
		// server is slower, nothing is queued, which the checks allow.)
		client.Write([]byte("EHLO c.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"))
		time.Sleep(5 * time.Millisecond)
		client.Write(data)
		client.Close()
		<-replies
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served

		want, ok := referenceData(data)
		switch {
		case q.count() > 1:
			t.Fatalf("%d messages from one DATA", q.count())
		case q.count() == 1 && !ok:
			t.Fatalf("queued input the reference refuses: %q", data)
		case q.count() == 1 && !bytes.HasSuffix(q.bodies[0], want):
			t.Fatalf("queued %q, reference read %q", q.bodies[0], want)
		}
	})
}
