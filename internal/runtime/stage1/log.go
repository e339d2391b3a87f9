package stage1

import (
	"fmt"
	"os"
	"time"
)

// logLimit is the size at which an app's log is rotated to log.1; at most
// two files are kept, so an app's log takes at most twice this.
const logLimit = 8 << 20

// appLog is an app's log file: "TIME STREAM TEXT" lines, where TEXT ends
// with a newline unless the line was cut (a partial line at exit or a line
// longer than the copy buffer).
type appLog struct {
	path string
	f    *os.File
	size int64
}

func openLog(path string) (*appLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &appLog{path: path, f: f, size: st.Size()}, nil
}

func (l *appLog) write(stream string, line []byte, complete bool) {
	if l.f == nil {
		return
	}
	if l.size > logLimit {
		l.rotate()
	}
	buf := make([]byte, 0, len(line)+48)
	buf = time.Now().UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, line...)
	if !complete {
		buf = append(buf, '\n')
	}
	n, _ := l.f.Write(buf)
	l.size += int64(n)
}

func (l *appLog) rotate() {
	l.f.Close()
	os.Rename(l.path, l.path+".1")
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		l.f = nil
		return
	}
	l.f, l.size = f, 0
}
