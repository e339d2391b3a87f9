package builtin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// notifyMsg is one datagram a unit sent to its NOTIFY_SOCKET
// (sd_notify(3)): newline-separated assignments, READY=1, STATUS=...,
// MAINPID=..., STOPPING=1, RELOADING=1.
type notifyMsg struct {
	// pid is the sender, as the kernel vouches for it (SCM_CREDENTIALS).
	pid    int
	fields map[string]string
}

// notifySocket is a unit's notification socket: a datagram socket in
// the run directory, one per unit, so that a message's unit is known from
// the socket it came in on; the sender's PID is checked against the unit
// all the same (NotifyAccess=). The manager's poller waits on it.
type notifySocket struct {
	path  string
	conn  *net.UnixConn
	watch *watch
}

// notifySocketPath is where unit's socket is in dir, or, when that path
// is too long for a socket address, a name made of its hash.
func notifySocketPath(dir, unit string) string {
	p := filepath.Join(dir, unit+".notify")
	if len(p) < len(unix.RawSockaddrUnix{}.Path) {
		return p
	}
	sum := sha256.Sum256([]byte(unit))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".notify")
}

// listenNotify binds the socket at path, replacing one a previous daemon
// left, and passes credentials with every message.
func listenNotify(path string) (*notifySocket, error) {
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
		if err == nil {
			err = serr
		}
	}
	if err == nil {
		// Units running as other users send here too.
		err = os.Chmod(path, 0o666)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	return &notifySocket{path: path, conn: conn}, nil
}

// serve hands each message that comes to handle, on the poller's
// goroutine, with a function to call once the message is queued: it
// closes the descriptors sent along (sd_notify_barrier's), which is what
// a barrier waits for, so that a sender that waits for one knows its
// earlier messages are queued before anything it does next, its exit
// included.
func (s *notifySocket) serve(p *poller, handle func(msg notifyMsg, queued func())) error {
	w, err := p.newWatch(s.conn, s.path, func() { s.readAll(p.scratch(), handle) })
	if err != nil {
		return err
	}
	s.watch = w
	return w.start()
}

// readAll reads the messages waiting, then waits for more.
func (s *notifySocket) readAll(buf []byte, handle func(notifyMsg, func())) {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*253))
	for {
		var (
			n, oobn int
			rerr    error
		)
		err := rc.Control(func(fd uintptr) {
			for {
				n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
				if rerr != unix.EINTR {
					return
				}
			}
		})
		switch {
		case err != nil: // closed
			return
		case rerr == unix.EAGAIN:
			s.watch.rearm()
			return
		case rerr != nil:
			return
		}
		msg := notifyMsg{fields: map[string]string{}}
		var fds []int
		if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range cmsgs {
				if cred, err := unix.ParseUnixCredentials(&c); err == nil {
					msg.pid = int(cred.Pid)
				}
				if rights, err := unix.ParseUnixRights(&c); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				msg.fields[k] = v
			}
		}
		closeFDs := func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		if msg.pid > 0 && len(msg.fields) > 0 {
			handle(msg, closeFDs)
		} else {
			closeFDs()
		}
	}
}

// close stops serving; the socket file stays for the next daemon.
func (s *notifySocket) close() {
	if s.watch != nil {
		s.watch.stop()
	}
	s.conn.Close()
}

// remove stops serving and deletes the socket file.
func (s *notifySocket) remove() {
	s.close()
	os.Remove(s.path)
}
