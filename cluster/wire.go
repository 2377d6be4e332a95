package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// Protocol bytes: the first byte a client sends after the TLS handshake
// selects what the connection carries.
const (
	protoRaft    byte = 'R' // hashicorp/raft's own RPCs, handed to the transport
	protoForward byte = 'F' // a stream of forwarded queue commands (stream.go)
	protoMember  byte = 'M' // one membership or status request
	protoDeliver byte = 'D' // one delivery job from the leader (delivery.go)
)

// maxFrame bounds one request or reply. A forwarded Enqueue carries the whole
// message body, so this is well above any sane message_size_limit.
const maxFrame = 256 << 20

// Request operations.
const (
	opApply   = "apply"
	opJoin    = "join"
	opLeave   = "leave"
	opBarrier = "barrier"
	opStatus  = "status"
	opDeliver = "deliver"
)

// Largest time a request may ask the leader to work on it.
const maxRequestTimeout = time.Minute

// request is the header of a frame: uvarint(len) | JSON header | raw data.
// Data is the encoded queue command for opApply, the job for opDeliver and
// empty otherwise. For opDeliver, Index is the log index the leader had
// applied and TimeoutMS how long the node may wait to apply it too.
type request struct {
	Op        string `json:"op"`
	Name      string `json:"name,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Index     uint64 `json:"index,omitempty"`
	TimeoutMS int64  `json:"timeout_ms"`
	Data      []byte `json:"-"`
}

// timeout is how long the leader may spend on the request.
func (r *request) timeout() time.Duration {
	return time.Duration(r.TimeoutMS) * time.Millisecond
}

// Reply codes.
const (
	codeOK        = "ok"
	codeNotLeader = "not_leader" // nothing was done; Leader names the leader if known
	codeNoQuorum  = "no_quorum"  // could not commit now, or the outcome is unknown
	codeRejected  = "rejected"   // invalid request or refused change; retrying will not help
	// codeRefused: a delivery job was not started (this node does not follow
	// the sender, lags behind, or shuts down); another node may run it.
	codeRefused = "refused"
)

// reply is the answer to one request.
type reply struct {
	Code       string   `json:"code"`
	Message    string   `json:"msg,omitempty"`
	LeaderAddr string   `json:"leader,omitempty"`
	Index      uint64   `json:"index,omitempty"` // log index of the command
	Count      int      `json:"count,omitempty"`
	Removed    bool     `json:"removed,omitempty"`
	IDs        []string `json:"ids,omitempty"`
	// ApplyErr is ApplyResult.Err as text; ApplyErrKind names a queue
	// sentinel error so errors.Is works on the follower too.
	ApplyErr     string  `json:"apply_err,omitempty"`
	ApplyErrKind string  `json:"apply_err_kind,omitempty"`
	Status       *Status `json:"status,omitempty"`
	// Payload is a delivery job's result, opaque to this package.
	Payload []byte `json:"payload,omitempty"`
}

// Sentinel errors of the queue that survive the trip by name.
var applyErrKinds = map[string]error{
	"duplicate_id":    queue.ErrDuplicateID,
	"unknown_command": queue.ErrUnknownCommand,
}

func applyErrKind(err error) string {
	for kind, sentinel := range applyErrKinds {
		if errors.Is(err, sentinel) {
			return kind
		}
	}
	return ""
}

// remoteApplyError is an ApplyResult.Err that came from the leader.
type remoteApplyError struct {
	msg      string
	sentinel error
}

func (e *remoteApplyError) Error() string { return e.msg }
func (e *remoteApplyError) Unwrap() error { return e.sentinel }

// result turns a reply into the ApplyResult the leader's FSM returned.
func (r *reply) result() queue.ApplyResult {
	res := queue.ApplyResult{Count: r.Count, Removed: r.Removed, IDs: r.IDs}
	if r.ApplyErr != "" || r.ApplyErrKind != "" {
		res.Err = &remoteApplyError{msg: r.ApplyErr, sentinel: applyErrKinds[r.ApplyErrKind]}
	}
	return res
}

func resultReply(res queue.ApplyResult, index uint64) reply {
	rep := reply{Code: codeOK, Index: index, Count: res.Count, Removed: res.Removed, IDs: res.IDs}
	if res.Err != nil {
		rep.ApplyErr = res.Err.Error()
		rep.ApplyErrKind = applyErrKind(res.Err)
	}
	return rep
}

// writeFrame writes a 4-byte big-endian length and payload.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("cluster: frame of %d bytes exceeds %d", len(payload), maxFrame)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("cluster: write frame: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("cluster: write frame: %w", err)
	}
	return nil
}

// readFrame reads one frame written by writeFrame.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("cluster: read frame: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("cluster: frame of %d bytes exceeds %d", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("cluster: read frame: %w", err)
	}
	return buf, nil
}

func encodeRequest(req *request) ([]byte, error) {
	hdr, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode request: %w", err)
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+len(hdr)+len(req.Data))
	buf = binary.AppendUvarint(buf, uint64(len(hdr)))
	buf = append(buf, hdr...)
	return append(buf, req.Data...), nil
}

// maxRequestHeader bounds the JSON part of a request; it holds a few names.
const maxRequestHeader = 4096

// decodeRequest parses and validates a request arriving on protocol proto.
func decodeRequest(proto byte, b []byte) (*request, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxRequestHeader || n > uint64(len(b)-k) {
		return nil, errors.New("cluster: bad request header length")
	}
	req := &request{}
	if err := json.Unmarshal(b[k:k+int(n)], req); err != nil {
		return nil, fmt.Errorf("cluster: decode request: %w", err)
	}
	req.Data = b[k+int(n):]
	if req.TimeoutMS <= 0 || req.timeout() > maxRequestTimeout {
		return nil, fmt.Errorf("cluster: request timeout %d ms out of range", req.TimeoutMS)
	}
	switch {
	case proto == protoForward && req.Op == opApply:
		if len(req.Data) == 0 {
			return nil, errors.New("cluster: apply request without a command")
		}
		return req, nil
	case proto == protoDeliver && req.Op == opDeliver:
		if len(req.Data) == 0 {
			return nil, errors.New("cluster: delivery request without a job")
		}
		return req, nil // Index 0: the leader had applied nothing yet
	case proto != protoMember:
		return nil, fmt.Errorf("cluster: operation %q not allowed on protocol %q", req.Op, proto)
	}
	if len(req.Data) != 0 {
		return nil, fmt.Errorf("cluster: unexpected data in %q request", req.Op)
	}
	switch req.Op {
	case opJoin:
		if err := validateName(req.Name); err != nil {
			return nil, err
		}
		if err := validateAddr(req.Addr); err != nil {
			return nil, err
		}
	case opLeave:
		if err := validateName(req.Name); err != nil {
			return nil, err
		}
	case opBarrier, opStatus:
	default:
		return nil, fmt.Errorf("cluster: unknown operation %q", req.Op)
	}
	return req, nil
}

func encodeReply(rep *reply) ([]byte, error) {
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode reply: %w", err)
	}
	return b, nil
}

func decodeReply(b []byte) (*reply, error) {
	rep := &reply{}
	if err := json.Unmarshal(b, rep); err != nil {
		return nil, fmt.Errorf("cluster: decode reply: %w", err)
	}
	switch rep.Code {
	case codeOK, codeNotLeader, codeNoQuorum, codeRejected, codeRefused:
	default:
		return nil, fmt.Errorf("cluster: unknown reply code %q", rep.Code)
	}
	if rep.LeaderAddr != "" {
		if err := validateAddr(rep.LeaderAddr); err != nil {
			return nil, fmt.Errorf("cluster: reply names leader: %w", err)
		}
	}
	return rep, nil
}
