//go:build !wasip1

package flotillahttp

import (
	"errors"
	"runtime"
)

// errNotWasm: outside a wasm guest there is no host to call. The package
// still compiles so code using it builds and vets on the host platform.
var errNotWasm = errors.New("flotillahttp: only available in a GOOS=wasip1 guest, not " + runtime.GOOS)

func exchange([]byte) ([]byte, error) { return nil, errNotWasm }

func publish(string, []byte) error { return errNotWasm }
