package stage1

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// identity is the user an app runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32
	home     string
}

// lookupIdentity resolves user and group (names or numbers, as the image
// config or --user/--group give them: "app", "1000", "app:staff",
// "1000:1000") against the passwd and group files of the app's root, which
// the caller has already made the current root. An empty user is root.
func lookupIdentity(user, group string) (identity, error) {
	if g, rest, ok := strings.Cut(user, ":"); ok {
		user = g
		if group == "" {
			group = rest
		}
	}
	id := identity{home: "/"}
	passwd := readEntries("/etc/passwd")
	groups := readEntries("/etc/group")
	switch {
	case user == "":
		id.home = "/root"
	case isNumber(user):
		n, _ := strconv.ParseUint(user, 10, 32)
		id.uid = uint32(n)
		id.gid = id.uid
		for _, e := range passwd {
			if len(e) > 5 && e[2] == user {
				if gid, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					id.gid = uint32(gid)
				}
				id.home = e[5]
				break
			}
		}
	default:
		found := false
		for _, e := range passwd {
			if len(e) > 5 && e[0] == user {
				uid, err1 := strconv.ParseUint(e[2], 10, 32)
				gid, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 != nil || err2 != nil {
					return id, fmt.Errorf("user %q: bad /etc/passwd entry", user)
				}
				id.uid, id.gid, id.home = uint32(uid), uint32(gid), e[5]
				found = true
				break
			}
		}
		if !found {
			return id, fmt.Errorf("user %q: not in the image's /etc/passwd", user)
		}
	}
	if group != "" {
		gid, err := lookupGroup(groups, group)
		if err != nil {
			return id, err
		}
		id.gid = gid
	}
	// Supplementary groups: those of the image's /etc/group that list the user.
	name := user
	for _, e := range passwd {
		if len(e) > 2 && e[2] == strconv.FormatUint(uint64(id.uid), 10) {
			name = e[0]
			break
		}
	}
	for _, e := range groups {
		if len(e) < 4 || e[3] == "" {
			continue
		}
		for _, member := range strings.Split(e[3], ",") {
			if member == name {
				if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(gid) != id.gid {
					id.groups = append(id.groups, uint32(gid))
				}
			}
		}
	}
	return id, nil
}

func lookupGroup(groups [][]string, group string) (uint32, error) {
	if isNumber(group) {
		n, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("group %q: %w", group, err)
		}
		return uint32(n), nil
	}
	for _, e := range groups {
		if len(e) > 2 && e[0] == group {
			n, err := strconv.ParseUint(e[2], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("group %q: bad /etc/group entry", group)
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("group %q: not in the image's /etc/group", group)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readEntries reads a colon-separated database such as /etc/passwd; a
// missing file is an empty one (many images have none).
func readEntries(path string) [][]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseEntries(f)
}

func parseEntries(r io.Reader) [][]string {
	var out [][]string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
