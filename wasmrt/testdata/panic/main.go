// Command panic panics, which the Go runtime turns into exit code 2.
package main

func main() {
	panic("boom")
}
