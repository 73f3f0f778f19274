// Package tlsconf turns a destination's TLS settings into a *tls.Config. Verification is on
// unless InsecureSkipVerify says otherwise; a custom CA file is the normal way to trust a
// private SIEM certificate.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config holds the TLS settings a destination may carry.
type Config struct {
	// CAFile is a PEM bundle of CA certificates to trust instead of the system roots.
	CAFile string
	// ClientCert and ClientKey are PEM files for mutual TLS; both or neither.
	ClientCert string
	ClientKey  string
	// ServerName overrides the name the server certificate is checked against.
	ServerName string
	// InsecureSkipVerify turns certificate verification off. False by default; the handler
	// logs a warning at start when a destination sets it.
	InsecureSkipVerify bool
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	if (c.ClientCert == "") != (c.ClientKey == "") {
		errs = append(errs, errors.New("ClientCert and ClientKey must be set together"))
	}
	for _, f := range []struct{ name, path string }{{"CAFile", c.CAFile}, {"ClientCert", c.ClientCert}, {"ClientKey", c.ClientKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// Build loads the files and returns the client TLS configuration (TLS 1.2 or later).
func (c Config) Build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // only by explicit setting
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CAFile %s: no PEM certificate found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" || c.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("ClientCert/ClientKey: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
