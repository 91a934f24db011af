package llm

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		d          Dialect
		kind       ErrorKind
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{DialectAnthropic, ErrAuthentication, 401, `{"type":"error","error":{"type":"authentication_error","message":"m"}}`, nil},
		{DialectAnthropic, ErrBilling, 402, `{"type":"error","error":{"type":"billing_error","message":"m"}}`, map[string]string{"X-Should-Retry": "false"}},
		{DialectAnthropic, ErrTooLarge, 413, `{"type":"error","error":{"type":"request_too_large","message":"m"}}`, nil},
		{DialectAnthropic, ErrBadGateway, 502, `{"type":"error","error":{"type":"api_error","message":"m"}}`, nil},
		{DialectOpenAI, ErrBilling, 429, `{"error":{"message":"m","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, map[string]string{"X-Should-Retry": "false"}},
		{DialectOpenAI, ErrRateLimit, 429, `{"error":{"message":"m","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, nil},
		{DialectOpenAI, ErrAuthentication, 401, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, nil},
		{DialectBedrock, ErrRateLimit, 429, `{"message":"m"}`, map[string]string{"X-Amzn-Errortype": "ThrottlingException"}},
		{DialectVertex, ErrPermission, 403, `{"error":{"code":403,"message":"m","status":"PERMISSION_DENIED"}}`, nil},
		{DialectOpenAI, ErrPermission, 403, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"permission_denied"}}`, nil},
	} {
		rec := httptest.NewRecorder()
		WriteErrorCode(rec, tc.d, tc.kind, "", "m")
		if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
			t.Errorf("%d/%d: got %d %s", tc.d, tc.kind, rec.Code, rec.Body.String())
		}
		if !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%d/%d: bad body or content type", tc.d, tc.kind)
		}
		for k, v := range tc.wantHeader {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%d/%d: header %s = %q, want %q", tc.d, tc.kind, k, got, v)
			}
		}
	}
}

// TestWriteErrorCode gives the OpenAI error its own code; the dialects
// without a code field are unchanged.
func TestWriteErrorCode(t *testing.T) {
	for _, tc := range []struct {
		d        Dialect
		code     string
		wantBody string
	}{
		{DialectOpenAI, "model_not_allowed", `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"model_not_allowed"}}`},
		{DialectOpenAI, "", `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"permission_denied"}}`},
		{DialectAnthropic, "model_not_allowed", `{"type":"error","error":{"type":"permission_error","message":"m"}}`},
		{DialectVertex, "model_not_allowed", `{"error":{"code":403,"message":"m","status":"PERMISSION_DENIED"}}`},
	} {
		rec := httptest.NewRecorder()
		WriteErrorCode(rec, tc.d, ErrPermission, tc.code, "m")
		if rec.Code != 403 || rec.Body.String() != tc.wantBody {
			t.Errorf("%d %q: got %d %s", tc.d, tc.code, rec.Code, rec.Body.String())
		}
	}
}
