package servicetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv names the helper program a test binary started by a unit
// runs instead of its tests.
const helperEnv = "ATOLL_SERVICETEST_HELPER"

// RunHelper runs one of the suite's helper programs and exits when the
// process was started as one (a unit's ExecStart= of the test binary);
// otherwise it returns at once. Call it first in TestMain.
//
// The helpers:
//
//	notify DELAY MSG...   sleep DELAY, send each MSG to $NOTIFY_SOCKET
//	                      (a newline in MSG separates assignments), then
//	                      sleep
//	mainpid               start "sleep 1000", print "child PID", send
//	                      MAINPID= and READY=1, wait for the manager to
//	                      have read them (BARRIER=1), exit
func RunHelper() {
	name := os.Getenv(helperEnv)
	if name == "" {
		return
	}
	if err := runHelper(name, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runHelper(name string, args []string) error {
	switch name {
	case "notify":
		if len(args) == 0 {
			return fmt.Errorf("notify: no delay")
		}
		delay, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		time.Sleep(delay)
		for _, msg := range args[1:] {
			if err := sdNotify(strings.ReplaceAll(msg, `\n`, "\n")); err != nil {
				return err
			}
		}
		time.Sleep(time.Hour)
	case "mainpid":
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			return err
		}
		fmt.Println("child", cmd.Process.Pid)
		if err := sdNotify(fmt.Sprintf("MAINPID=%d\nREADY=1", cmd.Process.Pid)); err != nil {
			return err
		}
		return sdNotifyBarrier()
	default:
		return fmt.Errorf("no helper %q", name)
	}
	return nil
}

func sdNotify(msg string) error {
	conn, err := net.Dial("unixgram", notifySocket())
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(msg))
	return err
}

// notifySocket is $NOTIFY_SOCKET; net reads a leading @ as an abstract
// socket's, as systemd writes it.
func notifySocket() string { return os.Getenv("NOTIFY_SOCKET") }

// sdNotifyBarrier is sd_notify_barrier: send BARRIER=1 with a pipe's
// write end and wait for the manager to close it.
func sdNotifyBarrier() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	conn, err := net.Dial("unixgram", notifySocket())
	if err != nil {
		unix.Close(p[1])
		return err
	}
	defer conn.Close()
	_, _, err = conn.(*net.UnixConn).WriteMsgUnix([]byte("BARRIER=1"), unix.UnixRights(p[1]), nil)
	unix.Close(p[1])
	if err != nil {
		return err
	}
	fds := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}
	_, err = unix.Poll(fds, 5000)
	return err
}
