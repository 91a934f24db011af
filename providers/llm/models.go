package llm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// modelCreated is the creation time the gateway reports for every model; the
// list is about what a key may use, not release dates.
const modelCreated = "1970-01-01T00:00:00Z"

type anthropicModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// WriteModelList answers GET …/v1/models in the Anthropic shape
// ({"data":[{"type":"model","id",…}],"has_more":false,"first_id","last_id"})
// or the OpenAI one ({"object":"list","data":[{"id","object":"model",…}]}).
func WriteModelList(w http.ResponseWriter, s Surface, ids []string) {
	var v any
	if s == SurfaceOpenAIModels {
		data := make([]openAIModel, len(ids))
		for i, id := range ids {
			data[i] = openAIModel{ID: id, Object: "model", OwnedBy: ownerOf(id)}
		}
		v = struct {
			Object string        `json:"object"`
			Data   []openAIModel `json:"data"`
		}{"list", data}
	} else {
		data := make([]anthropicModel, len(ids))
		for i, id := range ids {
			data[i] = anthropicModel{"model", id, DisplayName(id), modelCreated}
		}
		var first, last *string
		if len(ids) > 0 {
			first, last = &ids[0], &ids[len(ids)-1]
		}
		v = struct {
			Data    []anthropicModel `json:"data"`
			HasMore bool             `json:"has_more"`
			FirstID *string          `json:"first_id"`
			LastID  *string          `json:"last_id"`
		}{data, false, first, last}
	}
	writeJSON(w, v)
}

// WriteModel answers GET …/v1/models/{id} for one model the key may use.
func WriteModel(w http.ResponseWriter, s Surface, id string) {
	if s == SurfaceOpenAIModels {
		writeJSON(w, openAIModel{ID: id, Object: "model", OwnedBy: ownerOf(id)})
		return
	}
	writeJSON(w, anthropicModel{"model", id, DisplayName(id), modelCreated})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func ownerOf(id string) string {
	if strings.HasPrefix(id, "claude") {
		return "anthropic"
	}
	if strings.HasPrefix(id, "gpt-") || strings.HasPrefix(id, "o3") || strings.HasPrefix(id, "o4") || strings.HasPrefix(id, "text-embedding") {
		return "openai"
	}
	return "llm_gateway"
}

// DisplayName turns a canonical Claude id into its marketing name
// ("claude-sonnet-4-5" → "Claude Sonnet 4.5"); other ids are returned as is.
func DisplayName(id string) string {
	if !strings.HasPrefix(id, "claude-") {
		return id
	}
	parts := strings.Split(id, "-")
	var words, version []string
	for _, p := range parts {
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			version = append(version, p)
			continue
		}
		words = append(words, strings.ToUpper(p[:1])+p[1:])
	}
	name := strings.Join(words, " ")
	if len(version) > 0 {
		name += " " + strings.Join(version, ".")
	}
	return name
}
