//go:build unix

package lapse

import "syscall"

// coldAlloc returns n bytes of memory outside the Go heap: anonymous
// pages the kernel provides as they are first written, so an idle
// ring costs address space only.
func coldAlloc(n int) []byte {
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil // no cold tier; the map still caches
	}
	return mem
}

// coldFree returns memory from coldAlloc.
func coldFree(mem []byte) { _ = syscall.Munmap(mem) }
