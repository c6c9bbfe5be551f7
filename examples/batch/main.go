// Command batch is a small deterministic command module: it computes the
// first N primes (N from the first argument, default 1000) and prints the
// count and the last one. Build with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n := 1000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 {
			fmt.Fprintf(os.Stderr, "batch: bad argument %q: want a positive integer\n", os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	primes := firstPrimes(n)
	fmt.Printf("primes: %d, last: %d\n", len(primes), primes[len(primes)-1])
}

// firstPrimes returns the first n primes by trial division against the
// primes found so far.
func firstPrimes(n int) []int {
	primes := make([]int, 0, n)
	for c := 2; len(primes) < n; c++ {
		isPrime := true
		for _, p := range primes {
			if p*p > c {
				break
			}
			if c%p == 0 {
				isPrime = false
				break
			}
		}
		if isPrime {
			primes = append(primes, c)
		}
	}
	return primes
}
