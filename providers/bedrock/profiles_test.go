package bedrock

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/providers"
)

func TestInferenceProfiles(t *testing.T) {
	p := newTestProvider(t, "", func(c *Config) { c.Region = "eu-west-1" })
	got := p.InferenceProfiles()
	if len(got) != len(builtinModels) || got[0] != "eu.anthropic.claude-opus-4-6-v1" || got[4] != "eu.anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Errorf("built-in profiles %q", got)
	}
	p = newTestProvider(t, "", func(c *Config) {
		c.Models = providers.ModelMap{
			{Glob: "claude-sonnet-4-5*", ID: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
			{Glob: "claude-sonnet-*", ID: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
			{Glob: "claude-haiku-*", ID: "us.anthropic.claude-haiku-4-5-20251001-v1:0"},
		}
	})
	if got, want := p.InferenceProfiles(), []string{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-haiku-4-5-20251001-v1:0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("configured profiles %q, want %q", got, want)
	}
}

func TestWriteInferenceProfiles(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteInferenceProfiles(rec, "us-east-1", []string{
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"global.anthropic.claude-opus-4-6-v1",
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0", // repeated
		"anthropic.claude-3-5-haiku-20241022-v1:0",     // a base model: not a profile
		"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5",
		"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-6", // not a profile
		"not-a-model",
	})
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var got struct {
		Summaries []InferenceProfileSummary `json:"inferenceProfileSummaries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []InferenceProfileSummary{
		{
			InferenceProfileID:   "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			InferenceProfileName: "US Anthropic Claude Sonnet 4.5",
			InferenceProfileArn:  "arn:aws:bedrock:us-east-1:000000000000:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			Models:               []InferenceProfileModel{{ModelArn: "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"}},
			Status:               "ACTIVE", Type: "SYSTEM_DEFINED",
		},
		{
			InferenceProfileID:   "global.anthropic.claude-opus-4-6-v1",
			InferenceProfileName: "Global Anthropic Claude Opus 4.6",
			InferenceProfileArn:  "arn:aws:bedrock:us-east-1:000000000000:inference-profile/global.anthropic.claude-opus-4-6-v1",
			Models:               []InferenceProfileModel{{ModelArn: "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-6-v1"}},
			Status:               "ACTIVE", Type: "SYSTEM_DEFINED",
		},
		{
			InferenceProfileID:   "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
			InferenceProfileName: "EU Anthropic Claude Haiku 4.5",
			InferenceProfileArn:  "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
			Models:               []InferenceProfileModel{{ModelArn: "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"}},
			Status:               "ACTIVE", Type: "SYSTEM_DEFINED",
		},
		{
			InferenceProfileID:   "a1b2c3d4e5",
			InferenceProfileName: "a1b2c3d4e5",
			InferenceProfileArn:  "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5",
			Models:               []InferenceProfileModel{},
			Status:               "ACTIVE", Type: "APPLICATION",
		},
	}
	if !reflect.DeepEqual(got.Summaries, want) {
		g, _ := json.MarshalIndent(got.Summaries, "", "  ")
		t.Errorf("got %s", g)
	}

	// GovCloud ARNs use their partition; an empty list is an empty array.
	if s := InferenceProfileSummaries("us-gov-west-1", []string{"us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0"}); len(s) != 1 ||
		s[0].InferenceProfileArn != "arn:aws-us-gov:bedrock:us-gov-west-1:000000000000:inference-profile/us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Errorf("govcloud %+v", s)
	}
	rec = httptest.NewRecorder()
	WriteInferenceProfiles(rec, "us-east-1", nil)
	var empty struct {
		Summaries *[]json.RawMessage `json:"inferenceProfileSummaries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &empty); err != nil || empty.Summaries == nil || len(*empty.Summaries) != 0 {
		t.Errorf("empty list: %s (%v)", rec.Body.String(), err)
	}
}
