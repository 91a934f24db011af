package vertex

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/llmgateway/caddy-llm-gateway/providers"
)

// tokenTimeout bounds one access-token fetch (the OAuth token source takes
// no per-request context, so this is what keeps a hung token endpoint from
// holding every request that waits on the token cache).
const tokenTimeout = 30 * time.Second

// credentialTypes are the Google credential files a provider accepts, the
// ones Application Default Credentials accept too. The file comes from the
// operator's configuration, as trusted as GOOGLE_APPLICATION_CREDENTIALS.
var credentialTypes = map[string]bool{
	string(google.ServiceAccount):                true,
	string(google.AuthorizedUser):                true,
	string(google.ExternalAccount):               true,
	string(google.ExternalAccountAuthorizedUser): true,
	string(google.ImpersonatedServiceAccount):    true,
}

// newTokenSource builds the provider's cached token source: cfg.TokenSource,
// or the credentials file or JSON, or Application Default Credentials. Token
// fetches go through cfg.Transport (the oauth2.HTTPClient context value) and
// outlive ctx's cancellation (a Caddy config context ends when the config is
// unloaded, while in-flight requests may still need a token).
func newTokenSource(ctx context.Context, cfg Config) (oauth2.TokenSource, error) {
	n := 0
	for _, set := range []bool{cfg.CredentialsFile != "", len(cfg.CredentialsJSON) > 0, cfg.TokenSource != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("credentials_file, credentials JSON and a token source are mutually exclusive: set one")
	}
	if cfg.TokenSource != nil {
		return oauth2.ReuseTokenSource(nil, cfg.TokenSource), nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient,
		&http.Client{Transport: cfg.Transport, Timeout: tokenTimeout})
	data := cfg.CredentialsJSON
	if cfg.CredentialsFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.CredentialsFile); err != nil {
			return nil, fmt.Errorf("credentials_file: %v", err)
		}
	}
	if len(data) > 0 {
		creds, err := credentialsFromJSON(tctx, data)
		if err != nil {
			return nil, err
		}
		return oauth2.ReuseTokenSource(nil, creds.TokenSource), nil
	}
	creds, err := google.FindDefaultCredentials(tctx, Scope)
	if err != nil {
		return nil, fmt.Errorf("no credentials_file given and no Application Default Credentials found: %v", err)
	}
	return oauth2.ReuseTokenSource(nil, creds.TokenSource), nil
}

// credentialsFromJSON loads a Google credentials file of a known type,
// checking a service account's key up front so a broken file fails at
// configuration time, not at the first request. Errors never quote the file.
func credentialsFromJSON(ctx context.Context, data []byte) (*google.Credentials, error) {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("credentials: not a JSON credentials file (syntax error at byte %d)", se.Offset)
		}
		return nil, errors.New("credentials: not a Google credentials file")
	}
	if !credentialTypes[f.Type] {
		return nil, fmt.Errorf("credentials: unsupported credential type %q (want service_account, authorized_user, external_account, external_account_authorized_user or impersonated_service_account)", f.Type)
	}
	if f.Type == string(google.ServiceAccount) {
		if f.ClientEmail == "" {
			return nil, errors.New("credentials: the service account file has no client_email")
		}
		if err := checkRSAKey(f.PrivateKey); err != nil {
			return nil, err
		}
	}
	creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, data, google.CredentialsType(f.Type),
		google.CredentialsParams{Scopes: []string{Scope}})
	if err != nil {
		return nil, fmt.Errorf("credentials: %s", providers.Redact(err.Error(), f.PrivateKey))
	}
	return creds, nil
}

// checkRSAKey reports whether a service account's private_key is an RSA key
// in PEM (PKCS #8 or PKCS #1) or raw DER, as Google's JWT signer accepts.
func checkRSAKey(key string) error {
	if strings.TrimSpace(key) == "" {
		return errors.New("credentials: the service account file has no private_key")
	}
	der := []byte(key)
	if block, _ := pem.Decode(der); block != nil {
		der = block.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if _, ok := k.(*rsa.PrivateKey); ok {
			return nil
		}
		return errors.New("credentials: the service account's private_key is not an RSA key")
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return nil
	}
	return errors.New("credentials: the service account's private_key is not a PEM or DER RSA private key")
}
