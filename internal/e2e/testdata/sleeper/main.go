// Command sleeper is a test module that runs for a while: it sleeps
// args[1] (a Go duration, default 1h) in short naps, so a stopped pod's
// module is interrupted at the next nap instead of sleeping on, then
// exits 0. Build with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	d := time.Hour
	if len(os.Args) > 1 {
		v, err := time.ParseDuration(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "sleeper: bad duration %q\n", os.Args[1])
			os.Exit(2)
		}
		d = v
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("slept", d)
}
