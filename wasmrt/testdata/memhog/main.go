// Command memhog allocates and keeps 1 MiB blocks until the runtime dies.
package main

import "fmt"

var keep [][]byte

func main() {
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
		if i%64 == 0 {
			fmt.Println("MiB:", i)
		}
	}
}
