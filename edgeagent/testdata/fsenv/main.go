// Command fsenv is an edge agent test module: it shows what a container
// sees. Subcommands (one per run):
//
//	env            print the environment, one K=V a line, sorted
//	cat PATH...    print each file as "PATH: CONTENT"
//	write PATH S   write S to PATH, print "wrote PATH" or "write PATH: ERR"
//
// Build with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"os"
	"sort"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fsenv env | cat PATH... | write PATH CONTENT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
	case "cat":
		for _, p := range os.Args[2:] {
			b, err := os.ReadFile(p)
			if err != nil {
				fmt.Printf("%s: error: %v\n", p, err)
				continue
			}
			fmt.Printf("%s: %s\n", p, b)
		}
	case "write":
		if len(os.Args) != 4 {
			os.Exit(2)
		}
		if err := os.WriteFile(os.Args[2], []byte(os.Args[3]), 0o644); err != nil {
			fmt.Printf("write %s: %v\n", os.Args[2], err)
			return
		}
		fmt.Printf("wrote %s\n", os.Args[2])
	default:
		os.Exit(2)
	}
}
