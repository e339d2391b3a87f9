package node

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartupMemory gives back what start-up used and idle running does
// not: the heap garbage of bootstrapping, and this process's mappings of
// the binary's code and read-only data, most of which only package
// initialisation ever touched (the kernel maps 64 KiB around every page
// fault, so init alone makes nearly the whole binary resident). The pages
// stay in the page cache and fault back in when used.
//
// Dropping file-backed mappings is safe only where they hold the file's
// bytes unchanged: a static, non-PIE executable has no relocations, so its
// read-only segments are exactly the file. For any other kind of binary
// (cgo, PIE) it does nothing to them.
func releaseStartupMemory() error {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if !isStaticExecutable(exe) {
		return nil
	}
	ranges, err := readOnlyMappingsOf(exe)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		if err := madviseDontNeed(r[0], r[1]); err != nil {
			return fmt.Errorf("release %x-%x: %w", r[0], r[1], err)
		}
	}
	return nil
}

// isStaticExecutable reports whether path is an ELF executable with no
// dynamic linking and no position independence.
func isStaticExecutable(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		return false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC || p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// readOnlyMappingsOf lists the private read-only (r-xp, r--p) mappings of
// path in this process.
func readOnlyMappingsOf(path string) ([][2]uintptr, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != path || (fields[1] != "r-xp" && fields[1] != "r--p") {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ranges = append(ranges, [2]uintptr{uintptr(lo), uintptr(hi)})
	}
	return ranges, sc.Err()
}

func madviseDontNeed(start, end uintptr) error {
	_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED)
	if errno != 0 {
		return errno
	}
	return nil
}
