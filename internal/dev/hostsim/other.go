package hostsim

import (
	"net/url"
	"time"

	"github.com/google/uuid"
)

// TimerEnvelope renders a timer trigger invocation (binding name "timer").
func TimerEnvelope(method string, now time.Time) []byte {
	ts := netDateTime(now.UTC())
	return marshal(map[string]any{
		"Data": map[string]any{"timer": map[string]any{
			"Schedule":       map[string]any{"AdjustForDST": true},
			"ScheduleStatus": map[string]any{"Last": ts, "Next": ts, "LastUpdated": ts},
			"IsPastDue":      false,
		}},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": method, "UtcNow": ts, "RandGuid": uuid.NewString()}},
	})
}

// HTTPEnvelope renders an HTTP trigger invocation (binding name "req") as the host sends it
// when enableForwardingHttpRequest is off: the request as an object, its body as a string, the
// caller's identity as Core Tools reports an admin-level call.
func HTTPEnvelope(method, rawURL string, params map[string]string, body string) []byte {
	u, _ := url.Parse(rawURL)
	query := map[string]string{}
	for k, v := range u.Query() {
		query[k] = v[0]
	}
	if params == nil {
		params = map[string]string{}
	}
	return marshal(map[string]any{
		"Data": map[string]any{"req": map[string]any{
			"Url":     rawURL,
			"Method":  method,
			"Query":   query,
			"Headers": map[string][]string{"Content-Type": {"application/json"}},
			"Params":  params,
			"Body":    body,
			"Identities": []any{map[string]any{
				"AuthenticationType": "WebJobsAuthLevel", "IsAuthenticated": true, "Actor": nil, "BootstrapContext": nil,
				"Claims": []any{map[string]any{
					"Issuer": "LOCAL AUTHORITY", "OriginalIssuer": "LOCAL AUTHORITY", "Properties": map[string]any{},
					"Type":  "http://schemas.microsoft.com/2017/07/functions/claims/authlevel",
					"Value": "Admin", "ValueType": "http://www.w3.org/2001/XMLSchema#string",
				}},
				"Label": nil, "Name": nil,
				"NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
				"RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
			}},
		}},
		"Metadata": map[string]any{"Query": query, "Params": params, "Headers": map[string]string{"Content-Type": "application/json"},
			"sys": map[string]any{"MethodName": "DeadLetters", "UtcNow": netDateTime(time.Now().UTC()), "RandGuid": uuid.NewString()}},
	})
}
