// Command fsguest prints /data/in.txt and tries to write /data/out.txt.
package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("/data/in.txt")
	if err != nil {
		fmt.Println("read error:", err)
		os.Exit(1)
	}
	fmt.Printf("read: %s\n", b)
	if err := os.WriteFile("/data/out.txt", []byte("x"), 0o644); err != nil {
		fmt.Println("write error")
		return
	}
	fmt.Println("write ok")
}
