package main

import "syscall"

// osThread is the id of the OS thread running the calling goroutine right now.
func osThread() int { return syscall.Gettid() }
