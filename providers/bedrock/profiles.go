package bedrock

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// placeholderAccount is the account id in the inference-profile ARNs the
// gateway makes up for ids configured without an ARN.
const placeholderAccount = "000000000000"

// InferenceProfileSummary is one entry of Bedrock's ListInferenceProfiles
// answer, the fields the AWS SDKs (and Claude Code's Bedrock mode) read.
type InferenceProfileSummary struct {
	// InferenceProfileID is the id a client invokes
	// ("us.anthropic.claude-sonnet-4-5-20250929-v1:0").
	InferenceProfileID string `json:"inferenceProfileId"`
	// InferenceProfileName is a display name ("US Anthropic Claude Sonnet 4.5").
	InferenceProfileName string `json:"inferenceProfileName"`
	// InferenceProfileArn is the profile's ARN.
	InferenceProfileArn string `json:"inferenceProfileArn"`
	// Models are the foundation models the profile routes to.
	Models []InferenceProfileModel `json:"models"`
	// Status is always "ACTIVE".
	Status string `json:"status"`
	// Type is "SYSTEM_DEFINED" (or "APPLICATION" for application
	// inference profiles).
	Type string `json:"type"`
}

// InferenceProfileModel is a model an inference profile routes to.
type InferenceProfileModel struct {
	// ModelArn is the foundation model's ARN.
	ModelArn string `json:"modelArn"`
}

// InferenceProfileSummaries describes ids (as InferenceProfiles returns
// them) the way ListInferenceProfiles would in region:
//
//   - a system inference profile id ("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
//     gets the ARN arn:aws:bedrock:{region}:000000000000:inference-profile/{id}
//     and one model, arn:aws:bedrock:{region}::foundation-model/{id without its geography};
//   - an inference-profile ARN keeps its ARN, region and partition;
//   - an application-inference-profile ARN is listed with type APPLICATION
//     and no models (the gateway cannot know them);
//   - base model ids ("anthropic.…"), foundation-model ARNs and anything
//     else are not inference profiles and are left out.
//
// Repeated ids are listed once. Every profile is ACTIVE; system ones are
// SYSTEM_DEFINED.
func InferenceProfileSummaries(region string, ids []string) []InferenceProfileSummary {
	out := make([]InferenceProfileSummary, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		s, ok := profileSummary(region, id)
		if !ok || seen[s.InferenceProfileArn] {
			continue
		}
		seen[s.InferenceProfileArn] = true
		out = append(out, s)
	}
	return out
}

func profileSummary(region, id string) (InferenceProfileSummary, bool) {
	partition := partitionOf(region)
	account := placeholderAccount
	arn := ""
	if strings.HasPrefix(id, "arn:") {
		// arn:{partition}:bedrock:{region}:{account}:{type}/{id}
		f := strings.SplitN(id, ":", 6)
		if len(f) != 6 || f[2] != "bedrock" {
			return InferenceProfileSummary{}, false
		}
		typ, rid, ok := strings.Cut(f[5], "/")
		if !ok || rid == "" {
			return InferenceProfileSummary{}, false
		}
		switch typ {
		case "inference-profile":
		case "application-inference-profile":
			return InferenceProfileSummary{
				InferenceProfileID:   rid,
				InferenceProfileName: rid,
				InferenceProfileArn:  id,
				Models:               []InferenceProfileModel{},
				Status:               "ACTIVE",
				Type:                 "APPLICATION",
			}, true
		default:
			return InferenceProfileSummary{}, false
		}
		partition, region, account, arn, id = f[1], f[3], f[4], id, rid
	}
	geo, base, ok := strings.Cut(id, ".")
	if !ok || !isGeoLabel(geo) || !strings.Contains(base, ".") {
		return InferenceProfileSummary{}, false
	}
	if arn == "" {
		arn = "arn:" + partition + ":bedrock:" + region + ":" + account + ":inference-profile/" + id
	}
	return InferenceProfileSummary{
		InferenceProfileID:   id,
		InferenceProfileName: geoLabel(geo) + " Anthropic " + llm.DisplayName(llm.CanonicalModel(id)),
		InferenceProfileArn:  arn,
		Models:               []InferenceProfileModel{{ModelArn: "arn:" + partition + ":bedrock:" + region + "::foundation-model/" + base}},
		Status:               "ACTIVE",
		Type:                 "SYSTEM_DEFINED",
	}, true
}

// isGeoLabel accepts an inference-profile geography: lower-case letters and
// hyphens ("us", "eu", "apac", "global", "us-gov", "jp").
func isGeoLabel(s string) bool {
	if s == "" || s == "anthropic" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

func geoLabel(geo string) string {
	if geo == "global" {
		return "Global"
	}
	return strings.ToUpper(geo)
}

// partitionOf is the AWS partition of a region.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// WriteInferenceProfiles answers Claude Code's Bedrock-mode
// GET /inference-profiles with a 200 and
// {"inferenceProfileSummaries":[{"inferenceProfileId","inferenceProfileName",
// "inferenceProfileArn","models":[{"modelArn"}],"status":"ACTIVE",
// "type":"SYSTEM_DEFINED"}]}, built by InferenceProfileSummaries (no
// nextToken: the whole list fits one page).
func WriteInferenceProfiles(w http.ResponseWriter, region string, ids []string) {
	b, _ := json.Marshal(struct {
		Summaries []InferenceProfileSummary `json:"inferenceProfileSummaries"`
	}{InferenceProfileSummaries(region, ids)})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
