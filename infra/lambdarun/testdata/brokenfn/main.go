// Command brokenfn does not compile, on purpose: the lambdarun tests check how Build reports it.
package main

func main() {
	var n int = "not a number"
	_ = n
}
