package testkit

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// ServiceAccount describes a Google service-account key file whose
// token_uri is a mock token endpoint.
type ServiceAccount struct {
	Key      *rsa.PrivateKey
	KeyID    string
	Email    string
	Project  string
	TokenURI string
}

// JSON is the key file, as Google's console downloads it.
func (sa ServiceAccount) JSON(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(sa.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     sa.Project,
		"private_key_id": sa.KeyID,
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   sa.Email,
		"client_id":      "100000000000000000001",
		"auth_uri":       "https://accounts.google.invalid/o/oauth2/auth",
		"token_uri":      sa.TokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Write writes the key file to a temporary directory and returns its path
// (a vertex provider's credentials_file).
func (sa ServiceAccount) Write(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, sa.JSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
