//go:build !linux

package main

// osThread is not known on this system: the thread count is then reported as 1.
func osThread() int { return 0 }
