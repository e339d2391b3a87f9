package builtin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits on many descriptors with one goroutine (epoll): the pidfds
// of the units' processes, their notification sockets, and their output
// FIFOs while nothing is read from them. A goroutine blocked on each
// would hold a stack for every one, several per unit, for events that
// come once in a unit's life (its process ends) or never (a unit that
// writes nothing).
//
// A watch is one-shot: its function is called once, on the poller's
// goroutine, when the descriptor reads ready, and again only once it is
// armed again. The function must not block: it hands the event on.
type poller struct {
	epfd int
	wake *os.File // an eventfd: written to end run
	done chan struct{}

	mu      sync.Mutex
	watches map[uint64]*watch
	next    uint64
	closed  bool

	buf []byte // scratch, for the watches' functions
}

// watch is one descriptor the poller waits on.
type watch struct {
	p    *poller
	id   uint64
	rc   syscall.RawConn
	name string
	fn   func()
}

// wakeID is the event data of the poller's own eventfd.
const wakeID = 0

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &poller{
		epfd:    epfd,
		wake:    os.NewFile(uintptr(efd), "eventfd"),
		done:    make(chan struct{}),
		watches: map[uint64]*watch{},
		next:    wakeID + 1,
	}
	go p.run()
	return p, nil
}

// The event's data holds a watch's ID, 64 bits over its Fd and Pad.
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 { return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 }

// newWatch makes a watch that, once started, calls fn when c reads ready
// (a pidfd: its process has ended; a FIFO or a socket: there is something
// to read). name names c in errors. The watch can be stored where fn
// finds it before it starts.
func (p *poller) newWatch(c syscall.Conn, name string, fn func()) (*watch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("epoll %s: %w", name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w := &watch{p: p, id: p.next, rc: rc, name: name, fn: fn}
	p.next++
	if !p.closed {
		p.watches[w.id] = w
	}
	return w, nil
}

// start adds the watch to the poller.
func (w *watch) start() error {
	if err := w.ctl(unix.EPOLL_CTL_ADD); err != nil {
		w.stop()
		return err
	}
	return nil
}

var errPollerClosed = errors.New("poller closed")

// scratch is a buffer for a watch's function to read into, 64 KiB (the
// largest notification message taken), made once: the functions run one
// at a time, on the poller's goroutine, and keep nothing of it.
func (p *poller) scratch() []byte {
	if p.buf == nil {
		p.buf = make([]byte, 64<<10)
	}
	return p.buf
}

// ctl adds or arms the watch again, with the descriptor held open
// meanwhile, so that a Close racing it cannot let another file take its
// number, and the poller open.
func (w *watch) ctl(op int) error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.closed {
		return errPollerClosed
	}
	var cerr error
	err := w.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT}
		setEventID(&ev, w.id)
		cerr = unix.EpollCtl(w.p.epfd, op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("epoll %s: %w", w.name, err)
	}
	return nil
}

// rearm makes the watch call its function again the next time the
// descriptor reads ready (at once if it does now).
func (w *watch) rearm() error { return w.ctl(unix.EPOLL_CTL_MOD) }

// stop ends the watch: its function is not called for an event that
// comes after. One the poller took already may still call it, once, which
// then finds the file closed or its event stale. The caller closes the
// file after.
func (w *watch) stop() {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.closed {
		return
	}
	delete(w.p.watches, w.id)
	w.rc.Control(func(fd uintptr) { unix.EpollCtl(w.p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
}

// run waits for events until close. An event of a watch stopped
// meanwhile finds no watch and is dropped.
func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			p.mu.Lock()
			w := p.watches[id]
			p.mu.Unlock()
			if w != nil {
				w.fn()
			}
		}
	}
}

// close ends run and releases the epoll descriptor. Watches left are
// dropped; their files are their owners' to close.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.watches = nil
	p.mu.Unlock()
	p.wake.Write(binary.NativeEndian.AppendUint64(nil, 1))
	<-p.done
	p.wake.Close()
	unix.Close(p.epfd)
}
