// Command floor is the cheapest relay Go can run, for measuring pgguard's
// relay against: one locked thread, one epoll loop over every connection,
// read(2) and write(2) made as raw system calls, bytes copied from one
// socket to its peer and nothing looked at. It is PgBouncer's structure
// (one event loop) in Go, without the goroutines, the runtime's poller and
// the scheduler that pgguard's two relay loops per session go through. It
// is a measuring stick, not a proxy: no protocol, no policy, IPv4 loopback
// only, and a peer that stops reading stalls every connection.
//
//	go run ./bench/floor --listen 127.0.0.1:7440 --upstream 127.0.0.1:5432
//
// bench/README.md shows the measurement it serves.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7440", "IPv4 address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:5432", "IPv4 address of the server")
	flag.Parse()
	up, err := sockaddr(*upstream)
	if err != nil {
		fail(err)
	}
	l, err := listener(*listen)
	if err != nil {
		fail(err)
	}
	runtime.LockOSThread()
	if err := loop(l, up); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

func sockaddr(s string) (*syscall.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("%q is not an IPv4 address and port", s)
	}
	return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

func listener(addr string) (int, error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, sa); err != nil {
		return -1, err
	}
	return fd, syscall.Listen(fd, 1024)
}

// loop serves every connection on the calling thread until an error that
// is not one connection's.
func loop(l int, up *syscall.SockaddrInet4) error {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := watch(ep, l); err != nil {
		return err
	}
	peer := map[int]int{}
	buf := make([]byte, 64<<10)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, errno := rawEpollWait(ep, events)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l {
				if err := accept(ep, l, up, peer); err != nil {
					fmt.Fprintln(os.Stderr, "floor: accept:", err)
				}
				continue
			}
			to, ok := peer[fd]
			if !ok {
				continue
			}
			r, errno := rawIO(syscall.SYS_READ, fd, buf)
			if errno == syscall.EAGAIN {
				continue
			}
			if r <= 0 || errno != 0 || writeAll(to, buf[:r]) != nil {
				syscall.Close(fd)
				syscall.Close(to)
				delete(peer, fd)
				delete(peer, to)
			}
		}
	}
}

// accept takes one client and connects it to the server (a blocking
// connect: on loopback it is quick, and this is a measuring stick).
func accept(ep, l int, up *syscall.SockaddrInet4, peer map[int]int) error {
	c, _, err := syscall.Accept4(l, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err == nil {
		if err = syscall.Connect(s, up); err == nil {
			err = syscall.SetNonblock(s, true)
		}
	}
	if err == nil {
		for _, fd := range []int{c, s} {
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			if err == nil {
				err = watch(ep, fd)
			}
		}
	}
	if err != nil {
		syscall.Close(c)
		if s >= 0 {
			syscall.Close(s)
		}
		return err
	}
	peer[c], peer[s] = s, c
	return nil
}

func watch(ep, fd int) error {
	return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// writeAll writes p, waiting in poll(2) while the socket's buffer is full.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		w, errno := rawIO(syscall.SYS_WRITE, fd, p)
		switch {
		case errno == syscall.EAGAIN:
			pfd := struct {
				fd             int32
				events, revent int16
			}{int32(fd), 0x4 /* POLLOUT */, 0}
			syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, 1000)
		case errno != 0:
			return errno
		default:
			p = p[w:]
		}
	}
	return nil
}

// rawIO and rawEpollWait are system calls made without telling the Go
// scheduler: the thread is the loop's alone (LockOSThread), and the
// runtime's other threads run everything else.
func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	// read and write, as pgguard calls them (internal/wire.rawIO).
	r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), errno
}

func rawEpollWait(ep int, events []syscall.EpollEvent) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 100, 0, 0) // 100ms: the loop comes back to Go code, where the runtime can stop it for a GC
	return int(r), errno
}
