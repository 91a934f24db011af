package llm

import (
	"net/http/httptest"
	"testing"
)

func TestDisplayName(t *testing.T) {
	for in, want := range map[string]string{
		"claude-sonnet-4-5": "Claude Sonnet 4.5",
		"claude-opus-4":     "Claude Opus 4",
		"claude-3-5-haiku":  "Claude Haiku 3.5",
		"gpt-4o":            "gpt-4o",
	} {
		if got := DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteModelList(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteModelList(rec, SurfaceAnthropicModels, []string{"claude-haiku-4-5", "claude-sonnet-4-5"})
	want := `{"data":[{"type":"model","id":"claude-haiku-4-5","display_name":"Claude Haiku 4.5","created_at":"1970-01-01T00:00:00Z"},{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5","created_at":"1970-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-haiku-4-5","last_id":"claude-sonnet-4-5"}`
	if rec.Body.String() != want {
		t.Errorf("anthropic list:\n%s\nwant\n%s", rec.Body.String(), want)
	}
	rec = httptest.NewRecorder()
	WriteModelList(rec, SurfaceOpenAIModels, []string{"gpt-4o"})
	if want := `{"object":"list","data":[{"id":"gpt-4o","object":"model","created":0,"owned_by":"openai"}]}`; rec.Body.String() != want {
		t.Errorf("openai list: %s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	WriteModelList(rec, SurfaceAnthropicModels, nil)
	if want := `{"data":[],"has_more":false,"first_id":null,"last_id":null}`; rec.Body.String() != want {
		t.Errorf("empty list: %s", rec.Body.String())
	}
}
