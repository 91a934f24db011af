// Package llm is the gateway's shared vocabulary: the API surfaces a request
// can arrive on, the Call every provider family receives, the Usage every
// family reports, and canonical model names. It imports nothing of ours, so
// every other package (providers, governance, module) may import it.
package llm
