// Package control is the local control socket between the queue tools
// (mailq, postqueue, postsuper, qshape, sendmail, newaliases, cluster) and a
// running node: one JSON request and one JSON response per connection over a
// Unix socket. The server learns the caller's uid from the kernel
// (SO_PEERCRED), so destructive requests can be limited to the node's owner
// and root.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Request is one call. Op names the operation; Args is its JSON argument.
type Request struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
	Body []byte          `json:"body,omitempty"` // sendmail: the message
}

// Response is the answer; Error is set when the call failed.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Caller identifies the process on the other end of the socket.
type Caller struct {
	UID, GID uint32
	PID      int32
}

// Handler serves one operation.
type Handler func(ctx context.Context, c Caller, req *Request) (any, error)

// maxRequest bounds a request; a sendmail body is limited by the server
// before it is queued, this only stops a runaway client.
const maxRequest = 64 << 20

// Server answers requests on a Unix socket.
type Server struct {
	mu       sync.Mutex
	handlers map[string]Handler
	ln       net.Listener
	wg       sync.WaitGroup
}

// NewServer returns a server with no operations.
func NewServer() *Server { return &Server{handlers: make(map[string]Handler)} }

// Handle registers the handler for op.
func (s *Server) Handle(op string, h Handler) {
	s.mu.Lock()
	s.handlers[op] = h
	s.mu.Unlock()
}

// Listen creates the socket at path (replacing a stale one) with the given mode.
func (s *Server) Listen(path string, mode os.FileMode) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another node is running", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	s.ln = ln
	return nil
}

// Serve accepts connections until Close.
func (s *Server) Serve(ctx context.Context) error {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn.(*net.UnixConn))
		}()
	}
}

// Close stops accepting and waits for calls in progress.
func (s *Server) Close() error {
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) serveConn(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	caller, err := peerCredentials(conn)
	var resp Response
	if err != nil {
		resp.Error = err.Error()
	} else {
		resp = s.dispatch(ctx, caller, conn)
	}
	_ = json.NewEncoder(conn).Encode(&resp)
}

func (s *Server) dispatch(ctx context.Context, caller Caller, r io.Reader) (resp Response) {
	defer func() {
		if p := recover(); p != nil {
			resp = Response{Error: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	var req Request
	if err := json.NewDecoder(io.LimitReader(r, maxRequest)).Decode(&req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}
	}
	s.mu.Lock()
	h := s.handlers[req.Op]
	s.mu.Unlock()
	if h == nil {
		return Response{Error: fmt.Sprintf("unknown operation %q", req.Op)}
	}
	out, err := h(ctx, caller, &req)
	if err != nil {
		return Response{Error: err.Error()}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return Response{Error: err.Error()}
	}
	return Response{Result: b}
}

func peerCredentials(conn *net.UnixConn) (Caller, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return Caller{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Caller{}, err
	}
	if cerr != nil {
		return Caller{}, fmt.Errorf("peer credentials: %w", cerr)
	}
	return Caller{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

// ErrPermission means the caller may not use the control socket: only
// root, the node's user and yubin_admin_group may.
var ErrPermission = errors.New("permission denied: the control socket is for root and yubin_admin_group")

// ErrNotRunning means no node answers on the socket.
var ErrNotRunning = errors.New("the yubin node is not running")

// Call sends one request to the node at path and decodes the result into out.
func Call(ctx context.Context, path, op string, args any, body []byte, out any) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (control socket %s)", ErrPermission, path)
	}
	if err != nil {
		return fmt.Errorf("%w (control socket %s: %v)", ErrNotRunning, path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := Request{Op: op, Body: body}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return fmt.Errorf("control call %s: %w", op, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return fmt.Errorf("control call %s: %w", op, err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	if out != nil && len(resp.Result) > 0 {
		return json.Unmarshal(resp.Result, out)
	}
	return nil
}
