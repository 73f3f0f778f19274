package loganalytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

// roleHint is what a 401/403 needs the operator to do.
const roleHint = "the forwarder's identity needs the \"Monitoring Metrics Publisher\" role on the data collection rule (a new role assignment can take some minutes to apply)"

// classify maps an Upload error onto the sink vocabulary, as one line without secrets.
func (c *Client) classify(err error, stream string) error {
	where := fmt.Sprintf("loganalytics: upload to rule %s stream %s", c.cfg.RuleID, stream)
	var re *azcore.ResponseError
	var afe *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &afe):
		return classifyToken(afe, where)
	case errors.As(err, &re):
		return classifyResponse(re, where, c.now())
	case errors.Is(err, context.Canceled):
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("%s: cancelled: %w", where, err))
	case errors.Is(err, context.DeadlineExceeded):
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("%s: timed out: %w", where, err))
	}
	var netErr net.Error
	if isUnavailable(err) && !errors.As(err, &netErr) {
		// No managed identity here (or none with that client id): a setting to fix, not a
		// pause to wait out.
		return sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf("%s: no credential: %s (enable the function app's managed identity, set ClientId to a user-assigned one, or give TenantId, ClientId and ClientSecret or ClientCertificate)", where, oneLine(err.Error())))
	}
	// The endpoint, or the identity endpoint, did not answer: the shared reading decides (an
	// untrusted certificate is permanent, a timeout or a refused connection retryable).
	msg := where + ": "
	if hint := sink.TransportHint(err); hint != "" {
		msg += hint + ": "
	}
	return sink.Transport(context.Background(), &secret.Error{Msg: msg + oneLine(err.Error()), Cause: err})
}

// isUnavailable reports azidentity's "credential unavailable": errors that say they are not
// worth retrying and are not an authentication failure.
func isUnavailable(err error) bool {
	var nr interface{ NonRetriable() }
	var afe *azidentity.AuthenticationFailedError
	return errors.As(err, &nr) && !errors.As(err, &afe)
}

func classifyResponse(re *azcore.ResponseError, where string, now time.Time) error {
	code := re.StatusCode
	var h http.Header
	var detail string
	if re.RawResponse != nil {
		h = re.RawResponse.Header
		body, _ := runtime.Payload(re.RawResponse)
		detail = errorDetail(body)
	}
	if detail == "" && re.ErrorCode != "" {
		detail = re.ErrorCode
	}
	msg := fmt.Sprintf("%s: HTTP %d %s", where, code, http.StatusText(code))
	if detail != "" {
		msg += ": " + detail
	}
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += "; " + roleHint
	case http.StatusNotFound:
		msg += "; check RuleId (the rule's immutable id) and that the rule declares the stream"
	}
	return sink.HTTPStatus(code, h, now, errors.New(msg))
}

// classifyToken: Entra ID refused (400/401: a wrong secret, an unknown app or tenant) is
// permanent; its 429/5xx and a token endpoint that cannot be reached are retryable.
func classifyToken(afe *azidentity.AuthenticationFailedError, where string) error {
	msg := fmt.Sprintf("%s: cannot get a token: %s", where, tokenDetail(afe))
	if afe.RawResponse == nil {
		return sink.Retryable(sink.ReasonUnreachable, 0, errors.New(msg))
	}
	switch code := afe.RawResponse.StatusCode; {
	case code == http.StatusTooManyRequests:
		return sink.Retryable(sink.ReasonThrottled, sink.RetryAfterHeader(afe.RawResponse.Header, time.Now()), errors.New(msg))
	case code >= 500:
		return sink.Retryable(sink.ReasonUnreachable, 0, errors.New(msg))
	}
	return sink.Permanent(sink.ReasonUnauthorized, errors.New(msg))
}

// tokenDetail is the token endpoint's own explanation (the AADSTS line, or App Service's
// message), which names the problem without holding any secret.
func tokenDetail(afe *azidentity.AuthenticationFailedError) string {
	if afe.RawResponse != nil {
		body, _ := runtime.Payload(afe.RawResponse)
		var e struct {
			Error       any    `json:"error"`
			Description string `json:"error_description"`
			Message     string `json:"message"`
		}
		if json.Unmarshal(body, &e) == nil {
			d := e.Description
			if d == "" {
				d = e.Message
			}
			if d != "" {
				// Entra ID appends trace and correlation ids on further lines.
				d, _, _ = strings.Cut(d, "\r\n")
				return fmt.Sprintf("HTTP %d: %s", afe.RawResponse.StatusCode, oneLine(d))
			}
		}
		return fmt.Sprintf("HTTP %d", afe.RawResponse.StatusCode)
	}
	first, _, _ := strings.Cut(afe.Error(), "\n")
	return oneLine(first)
}

// errorDetail reads the service's {"error":{"code","message"}} body.
func errorDetail(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return oneLine(string(body))
	}
	switch {
	case e.Error.Code != "" && e.Error.Message != "":
		return oneLine(e.Error.Code + ": " + e.Error.Message)
	case e.Error.Message != "":
		return oneLine(e.Error.Message)
	}
	return oneLine(e.Error.Code)
}

// oneLine makes text safe for one log line and short.
func oneLine(s string) string { return sink.Snippet([]byte(s)) }
