package providers

// InferenceProfileLister is an optional interface of a Provider that serves
// Bedrock-shaped calls: Claude Code's Bedrock mode starts with
// GET …/inference-profiles, which the gateway answers from the profiles of
// every provider that implements it.
type InferenceProfileLister interface {
	// Region is the AWS region the profiles are listed in.
	Region() string
	// InferenceProfiles are the model ids the provider invokes (inference
	// profile ids or ARNs).
	InferenceProfiles() []string
}
