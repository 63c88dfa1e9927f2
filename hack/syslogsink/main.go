// Command syslogsink is a tiny syslog receiver for the test Cyrus pairs: Cyrus logs only
// through syslog(3), and the machines this project runs on have no syslog daemon. It
// listens on a unix datagram socket (normally /dev/log) and appends each message, with a
// timestamp, to a file. On SIGTERM it removes the socket if it is still its own.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	socket := flag.String("socket", "/dev/log", "unix datagram socket to listen on")
	out := flag.String("out", "", "file to append messages to")
	flag.Parse()
	if *out == "" {
		log.Fatal("syslogsink: -out is required")
	}
	if err := run(*socket, *out); err != nil {
		log.Fatalf("syslogsink: %v", err)
	}
}

func run(socket, out string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open output: %w", err)
	}
	defer f.Close()
	_ = os.Remove(socket) // a stale socket nobody serves
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socket, err)
	}
	if err := os.Chmod(socket, 0o666); err != nil {
		return fmt.Errorf("chmod %s: %w", socket, err)
	}
	st, err := os.Stat(socket)
	if err != nil {
		return fmt.Errorf("stat %s: %w", socket, err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		if cur, err := os.Stat(socket); err == nil && os.SameFile(cur, st) {
			_ = os.Remove(socket)
		}
		os.Exit(0)
	}()
	buf := make([]byte, 64*1024)
	for {
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		msg := strings.TrimRight(string(buf[:n]), "\n\x00")
		// "<pri>Mon dd hh:mm:ss tag[pid]: text" — keep it as sent, behind our own clock.
		fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), msg)
	}
}
