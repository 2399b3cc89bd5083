// Command kstatus prints the kstatus verdict (what Flux, kpt and `kubectl wait`-style tools compute)
// for Kubernetes objects: one JSON object per line on stdin, one JSON result per line on stdout.
//
// It exists so the tests can replay the statuses the operator really wrote through the real library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status) instead of a re-implementation that could disagree.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Status     string      `json:"status,omitempty"`
	Message    string      `json:"message,omitempty"`
	Conditions []condition `json:"conditions,omitempty"`
	Error      string      `json:"error,omitempty"`
}

func compute(raw []byte) result {
	// Kubernetes' own JSON decoding: integers become int64, as kstatus's generation checks expect.
	object := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &object); err != nil {
		return result{Error: fmt.Sprintf("not a JSON object: %v", err)}
	}
	computed, err := status.Compute(&unstructured.Unstructured{Object: object})
	if err != nil {
		return result{Error: err.Error()}
	}
	out := result{Status: computed.Status.String(), Message: computed.Message}
	for _, c := range computed.Conditions {
		out.Conditions = append(out.Conditions, condition{
			Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(bufio.NewReader(in))
	encoder := json.NewEncoder(out) // Encode ends each value with a newline: one line per object
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if err := encoder.Encode(compute(raw)); err != nil {
			return err
		}
	}
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
