//go:build !race

package edgeagent

const timeScale = 1
