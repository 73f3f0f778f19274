// Package samples holds the one copy of the public payloads that the tests of several packages
// read: two invocation bodies a real Functions host sent (timer-invocation.json,
// http-invocation.json) and Defender for Cloud exports, namely the Elastic integration's Event
// Hub samples (an alert with 27 entities, an assessment, a sub-assessment, a regulatory
// compliance assessment, a secure score control), the alert of Microsoft's continuous-export
// README and the alert of the Azure REST API's example (restapi_alert.json, the response
// body). README.md says where each comes from. Each package's testdata/ keeps only what is its
// own.
package samples

import (
	"embed"
	"testing"
)

//go:embed *.json *.jsonc
var files embed.FS

// Read returns the sample name, failing the test when there is none by that name.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile(name)
	if err != nil {
		t.Fatalf("samples: %v", err)
	}
	return b
}
