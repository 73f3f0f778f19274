package relp_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/sink/relp"
)

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name    string
		frame   relp.Frame
		want    string
		wantErr bool
	}{
		{"syslog", relp.Frame{Txnr: 2, Command: "syslog", Data: []byte("<13>1 - - - - - hi")}, "2 syslog 18 <13>1 - - - - - hi\n", false},
		{"no data", relp.Frame{Txnr: 7, Command: "close"}, "7 close 0\n", false},
		{"hint", relp.Frame{Txnr: 0, Command: "serverclose"}, "0 serverclose 0\n", false},
		{"data with LF", relp.Frame{Txnr: 1, Command: "syslog", Data: []byte("a\nb")}, "1 syslog 3 a\nb\n", false},
		{"max txnr", relp.Frame{Txnr: relp.MaxTxnr, Command: "rsp", Data: []byte("200 OK")}, "999999999 rsp 6 200 OK\n", false},
		{"txnr too big", relp.Frame{Txnr: relp.MaxTxnr + 1, Command: "syslog"}, "", true},
		{"negative txnr", relp.Frame{Txnr: -1, Command: "syslog"}, "", true},
		{"empty command", relp.Frame{Txnr: 1}, "", true},
		{"command with space", relp.Frame{Txnr: 1, Command: "sys log"}, "", true},
		{"command too long", relp.Frame{Txnr: 1, Command: strings.Repeat("a", 33)}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := relp.AppendFrame(nil, tc.frame)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, relp.ErrFrame) {
					t.Errorf("%v does not wrap ErrFrame", err)
				}
				return
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    relp.Frame
		used    int
		wantErr error // nil: success; ErrFrame, io.EOF or io.ErrUnexpectedEOF
	}{
		{"rsp", "3 rsp 6 200 OK\nrest", relp.Frame{Txnr: 3, Command: "rsp", Data: []byte("200 OK")}, 15, nil},
		{"hint", "0 serverclose 0\n", relp.Frame{Txnr: 0, Command: "serverclose"}, 16, nil},
		{"data holds LF", "1 syslog 3 a\nb\n", relp.Frame{Txnr: 1, Command: "syslog", Data: []byte("a\nb")}, 15, nil},
		{"empty input", "", relp.Frame{}, 0, io.EOF},
		{"cut in header", "12 rs", relp.Frame{}, 0, io.ErrUnexpectedEOF},
		{"cut in data", "1 syslog 10 abc", relp.Frame{}, 0, io.ErrUnexpectedEOF},
		{"no trailer", "1 syslog 3 abcX", relp.Frame{}, 0, relp.ErrFrame},
		{"datalen 0 then space", "1 close 0 \n", relp.Frame{}, 0, relp.ErrFrame},
		{"data without space", "1 syslog 3\nabc\n", relp.Frame{}, 0, relp.ErrFrame},
		{"ten-digit txnr", "1234567890 rsp 0\n", relp.Frame{}, 0, relp.ErrFrame},
		{"ten-digit datalen", "1 rsp 1234567890 x\n", relp.Frame{}, 0, relp.ErrFrame},
		{"datalen over the limit", "1 rsp 200000 x", relp.Frame{}, 0, relp.ErrFrame},
		{"letterless command", "1  0\n", relp.Frame{}, 0, relp.ErrFrame},
		{"digit in command", "1 rsp1 0\n", relp.Frame{}, 0, relp.ErrFrame},
		{"command too long", "1 " + strings.Repeat("a", 33) + " 0\n", relp.Frame{}, 0, relp.ErrFrame},
		{"no txnr", "rsp 0\n", relp.Frame{}, 0, relp.ErrFrame},
		{"negative", "-1 rsp 0\n", relp.Frame{}, 0, relp.ErrFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := relp.ParseFrame([]byte(tc.in), relp.DefaultMaxData)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.used || got.Txnr != tc.want.Txnr || got.Command != tc.want.Command || !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("got %+v (%d octets), want %+v (%d)", got, n, tc.want, tc.used)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in      string
		want    relp.Response
		wantErr bool
	}{
		{"200 OK", relp.Response{Status: 200, Text: "OK"}, false},
		{"200 OK\nrelp_version=0\ncommands=syslog", relp.Response{Status: 200, Text: "OK", Data: []byte("relp_version=0\ncommands=syslog")}, false},
		{"500 command disabled", relp.Response{Status: 500, Text: "command disabled"}, false},
		{"200 ", relp.Response{Status: 200}, false},
		{"200", relp.Response{}, true},
		{"20 OK", relp.Response{}, true},
		{"OK", relp.Response{}, true},
		{"", relp.Response{}, true},
	}
	for _, tc := range tests {
		got, err := relp.ParseResponse([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestOffers(t *testing.T) {
	got, err := relp.ParseOffers([]byte("\nrelp_version=0\ncommands=syslog,eventlog\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\nflag"))
	if err != nil {
		t.Fatal(err)
	}
	want := []relp.Offer{
		{Name: "relp_version", Values: []string{"0"}},
		{Name: "commands", Values: []string{"syslog", "eventlog"}},
		{Name: "relp_software", Values: []string{"librelp", "1.11.0", "http://librelp.adiscon.com"}},
		{Name: "flag"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range [][]relp.Offer{
		{{Name: "a=b"}}, {{Name: "a\nb"}}, {{Name: ""}}, {{Name: "a", Values: []string{"x,y"}}}, {{Name: "a", Values: []string{"x\ny"}}},
	} {
		if _, err := relp.AppendOffers(nil, bad); err == nil {
			t.Errorf("AppendOffers(%+v) took an offer that breaks the list", bad)
		}
	}
}
