//go:build race

package edgeagent

// The race detector slows wazero's compiler several times over.
const timeScale = 8
