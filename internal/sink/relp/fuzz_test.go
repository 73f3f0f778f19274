package relp_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/defender-siem/forwarder/internal/sink/relp"
)

// FuzzParseFrame feeds the frame reader arbitrary bytes, as a hostile or broken server would:
// it must never panic, never take more than it was given, and whatever it accepts must encode
// back to a frame that parses to the same thing; without leading zeros, to the same bytes.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		"1 rsp 6 200 OK\n",
		"1 rsp 47 200 OK\nrelp_version=0\ncommands=syslog\nrelp_software=x\n",
		"0 serverclose 0\n",
		"2 syslog 3 a\nb\n",
		"999999999 rsp 6 200 OK\n",
		"0001 rsp 0002 OK\n",
		"1 rsp 999999999 ",
		"1 rsp 5 200 OK\n",
		"12 rs",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, n, err := relp.ParseFrame(in, 1<<16)
		if err != nil {
			return
		}
		if n <= 0 || n > len(in) {
			t.Fatalf("took %d of %d octets", n, len(in))
		}
		if fr.Txnr < 0 || fr.Txnr > relp.MaxTxnr || len(fr.Data) > 1<<16 {
			t.Fatalf("accepted %+v", fr)
		}
		out, err := relp.AppendFrame(nil, fr)
		if err != nil {
			t.Fatalf("parsed %q as %+v, which does not encode: %v", in[:n], fr, err)
		}
		again, m, err := relp.ParseFrame(out, 1<<16)
		if err != nil || m != len(out) || again.Txnr != fr.Txnr || again.Command != fr.Command || !bytes.Equal(again.Data, fr.Data) {
			t.Fatalf("round trip: %q -> %+v -> %q -> %+v (%d, %v)", in[:n], fr, out, again, m, err)
		}
		if !leadingZero(in[:n]) && !bytes.Equal(out, in[:n]) {
			t.Fatalf("canonical frame %q encodes as %q", in[:n], out)
		}
	})
}

// leadingZero reports whether the TXNR or DATALEN of a well-formed frame has a leading zero.
func leadingZero(frame []byte) bool {
	fields := bytes.SplitN(frame, []byte{' '}, 3)
	txnr := fields[0]
	rest := fields[2]
	datalen := rest
	if i := bytes.IndexAny(rest, " \n"); i >= 0 {
		datalen = rest[:i]
	}
	return (len(txnr) > 1 && txnr[0] == '0') || (len(datalen) > 1 && datalen[0] == '0')
}

// FuzzFrameRoundTrip encodes arbitrary frames the client could send: a frame that encodes must
// parse back whole, and the data, whatever bytes it holds (LF, digits, a forged second frame),
// must stay inside it.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(uint32(1), []byte("<13>1 - - - - - hi"))
	f.Add(uint32(0), []byte{})
	f.Add(uint32(999999999), []byte("x\n2 syslog 1 y\n"))
	f.Add(uint32(1000000000), []byte("z"))
	commands := []string{"syslog", "rsp", "open", "close", "serverclose", "X"}
	f.Fuzz(func(t *testing.T, n uint32, data []byte) {
		txnr := int(n)
		cmd := commands[n%uint32(len(commands))]
		out, err := relp.AppendFrame(nil, relp.Frame{Txnr: txnr, Command: cmd, Data: data})
		if txnr > relp.MaxTxnr {
			if err == nil {
				t.Fatalf("transaction number %d encoded as %q", txnr, out)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d %q %q: %v", txnr, cmd, data, err)
		}
		stream := append(out, "5 rsp 6 200 OK\n"...)
		fr, used, err := relp.ParseFrame(stream, len(data)+1)
		if err != nil || used != len(out) || fr.Txnr != txnr || fr.Command != cmd || !bytes.Equal(fr.Data, data) {
			t.Fatalf("%d %q %q encoded as %q parsed as %+v (%d, %v)", txnr, cmd, data, out, fr, used, err)
		}
		next, _, err := relp.ParseFrame(stream[used:], 16)
		if err != nil || next.Txnr != 5 {
			t.Fatalf("the frame after %q did not parse: %+v %v", out, next, err)
		}
	})
}

// FuzzParseResponse: rsp data never panics the parser and what it accepts encodes back to the
// same bytes.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"200 OK", "200 OK\nrelp_version=0\ncommands=syslog", "500 error", "200 ", "200", "abc", "200 OK\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := relp.ParseResponse(in)
		if err != nil {
			return
		}
		if r.Status < 0 || r.Status > 999 {
			t.Fatalf("status %d", r.Status)
		}
		out, err := relp.AppendResponse(nil, r)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%q -> %+v -> %q (%v)", in, r, out, err)
		}
	})
}

// FuzzParseOffers: offer lists never panic the parser, and what it returns encodes to a list
// that parses to the same offers.
func FuzzParseOffers(f *testing.F) {
	for _, s := range []string{"relp_version=0\ncommands=syslog", "\nrelp_version=0\n", "a=,b,,c\n\nflag", "=x", "a==b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		offers, err := relp.ParseOffers(in)
		if err != nil {
			return
		}
		out, err := relp.AppendOffers(nil, offers)
		if err != nil {
			t.Fatalf("%q parsed as %+v, which does not encode: %v", in, offers, err)
		}
		again, err := relp.ParseOffers(out)
		if err != nil || !reflect.DeepEqual(again, offers) {
			t.Fatalf("%q -> %+v -> %q -> %+v (%v)", in, offers, out, again, err)
		}
	})
}
