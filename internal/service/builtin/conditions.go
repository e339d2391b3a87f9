package builtin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// checkConditions evaluates conditions as systemd does: every
// non-triggering condition must hold and, if there are triggering ones
// ("|"), at least one of them. It returns the first failing condition
// when they do not hold.
func checkConditions(conds []Condition) (ok bool, failed *Condition) {
	triggered, anyTrigger := false, false
	var firstTrigger *Condition
	for i := range conds {
		c := &conds[i]
		holds := evalCondition(*c)
		if c.Trigger {
			anyTrigger = true
			if holds {
				triggered = true
			} else if firstTrigger == nil {
				firstTrigger = c
			}
			continue
		}
		if !holds {
			return false, c
		}
	}
	if anyTrigger && !triggered {
		return false, firstTrigger
	}
	return true, nil
}

func evalCondition(c Condition) bool {
	return checkPath(c.Check, c.Value) != c.Negate
}

func checkPath(check, path string) bool {
	switch check {
	case "PathExists":
		_, err := os.Stat(path)
		return err == nil
	case "PathExistsGlob":
		matches, err := filepath.Glob(path)
		return err == nil && len(matches) > 0
	case "PathIsDirectory":
		st, err := os.Stat(path)
		return err == nil && st.IsDir()
	case "PathIsSymbolicLink":
		st, err := os.Lstat(path)
		return err == nil && st.Mode()&os.ModeSymlink != 0
	case "PathIsMountPoint":
		return isMountPoint(path)
	case "PathIsReadWrite":
		var st unix.Statfs_t
		return unix.Statfs(path, &st) == nil && st.Flags&unix.ST_RDONLY == 0
	case "DirectoryNotEmpty":
		entries, err := os.ReadDir(path)
		return err == nil && len(entries) > 0
	case "FileNotEmpty":
		st, err := os.Stat(path)
		return err == nil && st.Mode().IsRegular() && st.Size() > 0
	case "FileIsExecutable":
		st, err := os.Stat(path)
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	return false
}

// isMountPoint reports whether path is where a file system is mounted:
// it is listed in /proc/self/mountinfo.
func isMountPoint(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && unescapeMountPath(fields[4]) == real {
			return true
		}
	}
	return false
}

// unescapeMountPath decodes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// describeCondition is how messages name a condition.
func describeCondition(prefix string, c *Condition) string {
	v := c.Value
	if c.Negate {
		v = "!" + v
	}
	if c.Trigger {
		v = "|" + v
	}
	return fmt.Sprintf("%s%s=%s", prefix, c.Check, v)
}
