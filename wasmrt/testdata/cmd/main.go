// Command cmd prints its argv and FOO, writes to stderr and exits with the
// code in EXIT_CODE.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	fmt.Printf("args=%s\n", strings.Join(os.Args, ","))
	fmt.Printf("FOO=%s\n", os.Getenv("FOO"))
	fmt.Fprintln(os.Stderr, "to stderr")
	code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
	os.Exit(code)
}
