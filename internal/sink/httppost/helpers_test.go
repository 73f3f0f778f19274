package httppost

import "github.com/defender-siem/forwarder/internal/sink/tlsconf"

func tlsconfMissingCA() tlsconf.Config {
	return tlsconf.Config{CAFile: "/nonexistent/ca.pem"}
}
