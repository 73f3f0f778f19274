package relp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Protocol limits from the RELP specification.
const (
	// MaxTxnr is the largest transaction number; the next one after it is 1.
	MaxTxnr = 999_999_999
	// maxDigits is the most digits TXNR and DATALEN may have.
	maxDigits = 9
	// maxCommand is the longest command name.
	maxCommand = 32
	// DefaultMaxData is the largest DATA the client accepts in a server frame: the 128 KiB the
	// specification fixes for relp version 1. Server frames are answers, far smaller.
	DefaultMaxData = 128 << 10
)

// Commands and hints the client uses or understands.
const (
	cmdOpen         = "open"
	cmdSyslog       = "syslog"
	cmdClose        = "close"
	cmdRsp          = "rsp"
	hintServerClose = "serverclose"
)

// ErrFrame is wrapped by every error about a malformed frame, answer or offer list.
var ErrFrame = errors.New("relp: malformed frame")

// Frame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type Frame struct {
	// Txnr is the transaction number; 0 marks a hint, which gets no answer.
	Txnr int
	// Command is 1 to 32 ASCII letters.
	Command string
	// Data is the command's data, empty for none.
	Data []byte
}

func frameErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFrame, fmt.Sprintf(format, args...))
}

func validCommand(s string) bool {
	if len(s) == 0 || len(s) > maxCommand {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }
func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// AppendFrame appends f in wire form to dst. It refuses what the grammar cannot carry: a
// transaction number outside 0..MaxTxnr, a command that is not 1 to 32 letters, data longer
// than nine digits can count.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	if f.Txnr < 0 || f.Txnr > MaxTxnr {
		return dst, frameErr("transaction number %d outside 0..%d", f.Txnr, MaxTxnr)
	}
	if !validCommand(f.Command) {
		return dst, frameErr("command %q is not 1 to %d letters", f.Command, maxCommand)
	}
	if len(f.Data) > MaxTxnr {
		return dst, frameErr("data of %d octets is longer than DATALEN can count", len(f.Data))
	}
	dst = strconv.AppendInt(dst, int64(f.Txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, f.Command...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(f.Data)), 10)
	if len(f.Data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, f.Data...)
	}
	return append(dst, '\n'), nil
}

// byteReader is what ReadFrame reads from: a *bufio.Reader or a *bytes.Reader.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// ReadFrame reads one frame. It returns io.EOF when r ends cleanly before a frame starts and
// io.ErrUnexpectedEOF when it ends inside one; DATA longer than maxData is refused before it
// is read, so a hostile length cannot make the client allocate.
func ReadFrame(r byteReader, maxData int) (Frame, error) {
	var f Frame
	txnr, end, err := readNumber(r, "TXNR", true)
	if err != nil {
		return f, err
	}
	if end != ' ' {
		return f, frameErr("TXNR ends with %q, want a space", end)
	}
	f.Txnr = txnr
	var cmd [maxCommand]byte
	n := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return f, unexpected(err)
		}
		if b == ' ' {
			break
		}
		if !isAlpha(b) {
			return f, frameErr("command holds %q, want letters", b)
		}
		if n == maxCommand {
			return f, frameErr("command longer than %d letters", maxCommand)
		}
		cmd[n] = b
		n++
	}
	if n == 0 {
		return f, frameErr("empty command")
	}
	f.Command = string(cmd[:n])
	dataLen, end, err := readNumber(r, "DATALEN", false)
	if err != nil {
		return f, err
	}
	if dataLen == 0 {
		if end != '\n' {
			return f, frameErr("DATALEN 0 is followed by %q, want LF", end)
		}
		return f, nil
	}
	if end != ' ' {
		return f, frameErr("DATALEN %d is followed by %q, want a space", dataLen, end)
	}
	if dataLen > maxData {
		return f, frameErr("DATALEN %d is more than the %d this client accepts", dataLen, maxData)
	}
	f.Data = make([]byte, dataLen)
	if _, err := io.ReadFull(r, f.Data); err != nil {
		return f, unexpected(err)
	}
	b, err := r.ReadByte()
	if err != nil {
		return f, unexpected(err)
	}
	if b != '\n' {
		return f, frameErr("frame ends with %q after %d octets of data, want LF", b, dataLen)
	}
	return f, nil
}

// readNumber reads 1 to 9 digits and the byte after them. first says the number starts the
// frame, where a clean end of input is io.EOF rather than a broken frame.
func readNumber(r io.ByteReader, name string, first bool) (n int, end byte, err error) {
	digits := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			if first && digits == 0 && err == io.EOF {
				return 0, 0, io.EOF
			}
			return 0, 0, unexpected(err)
		}
		if !isDigit(b) {
			if digits == 0 {
				return 0, 0, frameErr("%s starts with %q, want a digit", name, b)
			}
			return n, b, nil
		}
		if digits == maxDigits {
			return 0, 0, frameErr("%s longer than %d digits", name, maxDigits)
		}
		n = n*10 + int(b-'0')
		digits++
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseFrame reads one frame from the start of b and returns it with the number of octets it
// took.
func ParseFrame(b []byte, maxData int) (Frame, int, error) {
	r := bytes.NewReader(b)
	f, err := ReadFrame(r, maxData)
	if err != nil {
		return Frame{}, 0, err
	}
	return f, len(b) - r.Len(), nil
}

// Response is the DATA of an rsp frame: STATUS SP HUMAN-TEXT [LF CMDDATA].
type Response struct {
	// Status is the three-digit code; 200 is the only success.
	Status int
	// Text is the human-readable message, without LF.
	Text string
	// Data is what follows the first LF (the accepted offers of an open); nil when no LF.
	Data []byte
}

// OK reports whether the answer is a success.
func (r Response) OK() bool { return r.Status == 200 }

// ParseResponse parses an rsp frame's data. It wants three digits and a space, as librelp
// itself does, then text up to the first LF.
func ParseResponse(data []byte) (Response, error) {
	if len(data) < 4 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) || data[3] != ' ' {
		return Response{}, frameErr("answer %q does not start with a three-digit status and a space", clip(data))
	}
	r := Response{Status: int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')}
	rest := data[4:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		r.Text = string(rest[:i])
		r.Data = append([]byte{}, rest[i+1:]...)
	} else {
		r.Text = string(rest)
	}
	return r, nil
}

// AppendResponse appends r as rsp data; it is what a server writes, kept for tests and fuzzing.
func AppendResponse(dst []byte, r Response) ([]byte, error) {
	if r.Status < 0 || r.Status > 999 {
		return dst, frameErr("status %d is not three digits", r.Status)
	}
	if bytes.IndexByte([]byte(r.Text), '\n') >= 0 {
		return dst, frameErr("answer text holds LF")
	}
	dst = append(dst, byte('0'+r.Status/100), byte('0'+r.Status/10%10), byte('0'+r.Status%10), ' ')
	dst = append(dst, r.Text...)
	if r.Data != nil {
		dst = append(dst, '\n')
		dst = append(dst, r.Data...)
	}
	return dst, nil
}

// clip shortens what an error message quotes from the peer.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// Offer is one feature of an open: FEATURENAME ["=" VALUE *("," VALUE)].
type Offer struct {
	Name   string
	Values []string
}

// AppendOffers writes offers one a line, joined by LF, as librelp writes them. A name or value
// that would break the list (LF, "=" in a name, "," in a value, an empty one) is refused.
func AppendOffers(dst []byte, offers []Offer) ([]byte, error) {
	for i, o := range offers {
		if o.Name == "" || bytes.ContainsAny([]byte(o.Name), "=\n") {
			return dst, frameErr("offer name %q", o.Name)
		}
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, o.Name...)
		dst = append(dst, '=')
		for j, v := range o.Values {
			if v == "" || bytes.ContainsAny([]byte(v), ",\n") {
				return dst, frameErr("offer %s value %q", o.Name, v)
			}
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
	}
	return dst, nil
}

// ParseOffers reads an offer list: one offer a line; empty lines (a leading LF, as some
// clients send) are skipped and empty values dropped.
func ParseOffers(b []byte) ([]Offer, error) {
	var out []Offer
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		name, vals, _ := bytes.Cut(line, []byte{'='})
		if len(name) == 0 {
			return nil, frameErr("offer without a name in %q", clip(line))
		}
		o := Offer{Name: string(name)}
		for _, v := range bytes.Split(vals, []byte{','}) {
			if len(v) > 0 {
				o.Values = append(o.Values, string(v))
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// offer returns the values of the offer called name and whether it is there.
func offer(offers []Offer, name string) ([]string, bool) {
	for _, o := range offers {
		if o.Name == name {
			return o.Values, true
		}
	}
	return nil, false
}
