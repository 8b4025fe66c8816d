// Command go-tunnel is the bench's Go reference tunnel (kind go-muxado of
// `npm run bench`): the same shape as `muxtun serve` + `muxtun connect -L`,
// written the way a Go programmer would with the reference muxado
// (github.com/inconshreveable/muxado, Debian golang-github-inconshreveable-muxado-dev),
// so muxtun's numbers have a peer that shares its protocol, not only ssh's.
//
// Built in GOPATH mode against the Debian sources only (stdlib + muxado), never
// downloading anything (scripts/bench/procs.js does this):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off go build -o .tmp/bench/go-tunnel .
//
// Modes (each exits when its stdin reaches EOF, so the bench never leaves one behind):
//
//	server -listen 127.0.0.1:0
//	    TLS 1.3 with a fresh self-signed ECDSA P-256 certificate (as muxtun serve
//	    makes one). Prints "LISTENING <port>" and "FINGERPRINT sha256:<hex>" (of the
//	    certificate's DER). Runs a muxado server session per accepted connection;
//	    each stream starts with a header (one byte n, then n bytes "host:port")
//	    naming the target, which it dials and pipes both ways.
//
//	client -server HOST:PORT -fingerprint sha256:<hex> -listen 127.0.0.1:0 -target HOST:PORT [-listen ... -target ...]
//	    One TLS connection and one muxado client session to the server; the i-th
//	    -listen forwards to the i-th -target, each accepted connection on its own
//	    stream. Prints "TLS <version> <cipher suite>" once the handshake is done,
//	    then "LISTENING <port>" per listener, in the order given. Exits if the
//	    session ends.
//
// Half-close is carried both ways (FIN on TCP <-> HalfClose on the stream), as
// the bench's echo target relies on it; an error on either side closes both.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/inconshreveable/muxado"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-tunnel: "+format+"\n", args...)
	os.Exit(1)
}

// list is a repeatable string flag (-listen a -listen b).
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go-tunnel server|client [flags] (see -h of each)")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	watchStdin := fs.Bool("watch-stdin", true, "exit when stdin reaches EOF")
	switch cmd {
	case "server":
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on (TLS)")
		fs.Parse(args)
		exitOnStdinEOF(*watchStdin)
		runServer(*listen)
	case "client":
		server := fs.String("server", "", "address of the go-tunnel server")
		fingerprint := fs.String("fingerprint", "", "sha256:<hex> of the server certificate (pinned)")
		var listens, targets list
		fs.Var(&listens, "listen", "local address to accept on (repeatable)")
		fs.Var(&targets, "target", "host:port the server dials for the matching -listen (repeatable)")
		fs.Parse(args)
		if *server == "" || len(listens) == 0 || len(listens) != len(targets) {
			fail("client needs -server and as many -target as -listen (got %d and %d)", len(listens), len(targets))
		}
		exitOnStdinEOF(*watchStdin)
		runClient(*server, *fingerprint, listens, targets)
	default:
		fmt.Fprintf(os.Stderr, "go-tunnel: unknown mode %q (server or client)\n", cmd)
		os.Exit(2)
	}
}

// exitOnStdinEOF ends the process when its parent closes our stdin (or dies).
func exitOnStdinEOF(on bool) {
	if !on {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
}

// ---------------------------------------------------------------- server

func runServer(addr string) {
	cert, fingerprint := selfSigned()
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	l, err := tls.Listen("tcp", addr, config)
	if err != nil {
		fail("listen %s: %v", addr, err)
	}
	fmt.Printf("LISTENING %d\nFINGERPRINT %s\n", l.Addr().(*net.TCPAddr).Port, fingerprint)
	for {
		conn, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go serveSession(muxado.Server(conn))
	}
}

func serveSession(sess muxado.Session) {
	defer sess.Close()
	for {
		stream, err := sess.Accept()
		if err != nil {
			return
		}
		go serveStream(stream)
	}
}

func serveStream(stream muxado.Stream) {
	target, err := readHeader(stream)
	if err != nil {
		stream.Close()
		return
	}
	conn, err := net.Dial("tcp", target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-tunnel: dial %s: %v\n", target, err)
		stream.Close()
		return
	}
	pipe(conn.(*net.TCPConn), stream)
}

func readHeader(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	target := make([]byte, n[0])
	if _, err := io.ReadFull(r, target); err != nil {
		return "", err
	}
	return string(target), nil
}

// selfSigned makes the server's certificate and its pin (sha256 of the DER).
func selfSigned() (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "go-tunnel"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		fail("certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pin(der)
}

func pin(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------- client

func runClient(server, fingerprint string, listens, targets []string) {
	config := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The certificate is self-signed: trust is the pin, checked below (as muxtun connect --fingerprint).
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || (fingerprint != "" && !strings.EqualFold(pin(raw[0]), fingerprint)) {
				return errors.New("server certificate does not match -fingerprint")
			}
			return nil
		},
	}
	conn, err := tls.Dial("tcp", server, config)
	if err != nil {
		fail("connect %s: %v", server, err)
	}
	state := conn.ConnectionState()
	fmt.Printf("TLS %s %s\n", tlsVersion(state.Version), tls.CipherSuiteName(state.CipherSuite))
	sess := muxado.Client(conn)

	for i, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fail("listen %s: %v", addr, err)
		}
		header, err := headerFor(targets[i])
		if err != nil {
			fail("%v", err)
		}
		fmt.Printf("LISTENING %d\n", l.Addr().(*net.TCPAddr).Port)
		go forward(l, sess, header)
	}
	_, err, _ = sess.Wait()
	fail("session ended: %v", err)
}

func headerFor(target string) ([]byte, error) {
	if len(target) > 255 {
		return nil, fmt.Errorf("target %q is longer than 255 bytes", target)
	}
	return append([]byte{byte(len(target))}, target...), nil
}

func forward(l net.Listener, sess muxado.Session, header []byte) {
	for {
		conn, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go func() {
			stream, err := sess.Open()
			if err != nil {
				conn.Close()
				return
			}
			if _, err := stream.Write(header); err != nil {
				conn.Close()
				stream.Close()
				return
			}
			pipe(conn.(*net.TCPConn), stream)
		}()
	}
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return fmt.Sprintf("0x%04x", v)
}

// ---------------------------------------------------------------- both

// pipe copies both ways until both have ended. A clean EOF is passed on as a
// half-close; an error (a reset, a write to a closed peer) closes both ends,
// which also wakes the copy still blocked in the other direction.
func pipe(conn *net.TCPConn, stream muxado.Stream) {
	abort := func() {
		conn.Close()
		stream.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(stream, conn); err != nil {
			abort()
			return
		}
		stream.HalfClose(nil)
	}()
	// The peer's half-close arrives as io.EOF, which io.Copy reports as nil.
	if _, err := io.Copy(conn, stream); err != nil {
		abort()
	} else {
		conn.CloseWrite()
	}
	<-done
	abort()
}
