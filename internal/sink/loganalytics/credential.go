package loganalytics

import (
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/defender-siem/forwarder/internal/azauth"
)

// Auth says how the forwarder gets its tokens: the function app's managed identity, or an
// app registration, which is how a workspace in another tenant is reached.
type Auth = azauth.Auth

// NewCredential builds the credential a validated Auth describes. hc carries the requests
// (nil: the SDK's default client); the SDK does not retry token requests, so that one Send
// stays one attempt of the pipeline's retry policy.
func NewCredential(a Auth, hc *http.Client) (azcore.TokenCredential, error) {
	c, err := azauth.NewCredential(a, hc, -1)
	if err != nil {
		return nil, fmt.Errorf("loganalytics: %w", err)
	}
	return c, nil
}
