// Command muxado-peer drives the Go reference implementation of muxado
// (github.com/inconshreveable/muxado, Debian golang-github-inconshreveable-muxado-dev)
// so that muxtun's interop suite can talk to it over plain TCP.
//
// It is built in GOPATH mode against the Debian sources only (stdlib + muxado):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o bin/muxado-peer ./peer
//
// Subcommands (every one exits when its stdin reaches EOF, so a peer spawned by
// a test never outlives the test process; pass -watch-stdin=false to run by hand):
//
//	server -listen 127.0.0.1:0
//	    Prints "LISTENING <port>", then runs a muxado.Server session on every
//	    accepted connection. What it does with an accepted stream depends on the
//	    stream type the opener put in its SYN:
//	      type 7 (control)  read one line "<streams> <bytes>", open that many
//	                        streams back to the client (server-initiated, even ids),
//	                        run the echo check on them (see client) and write the
//	                        JSON result line back on the control stream.
//	      type 8 (close)    Close() at once without reading: the reference then
//	                        answers any DATA that still arrives with an RST.
//	      anything else     echo: copy everything back; when the read side hits EOF,
//	                        HalfClose(nil) then Close(), as a typical Go program does.
//	    Writes one JSON line on stdout per finished stream ("stream-end") and per
//	    finished session ("session-end") so tests can observe the reference's view.
//
//	client -connect 127.0.0.1:PORT -streams 16 -bytes 4194304 [-idle 20s] [-type 0]
//	    Dials, runs a muxado.Client session, optionally stays idle first (only the
//	    heartbeat extension talks), then opens the streams in parallel. Each writes
//	    -bytes deterministic pseudo-random bytes while reading the echo, half-closes,
//	    and checks that the sha256 of what came back equals what it sent.
//	    Prints one JSON result line and exits 0, or prints the failure on stderr
//	    and exits 1.
//
//	echo-client -connect 127.0.0.1:PORT
//	    Dials, runs a muxado.Client session and echoes every stream the *server*
//	    opens (as the server subcommand does). Prints a JSON line when the session
//	    ends and exits 0.
//
//	bench -connect 127.0.0.1:PORT [-bulk-bytes N] [-rr-seconds S] [-idle-streams N]
//	    (alias bench-client; bench-server is an alias of server)
//	    Engine benchmark against any echo server (our "server" subcommand or
//	    muxtun's), each workload on a fresh session. Prints one JSON line:
//	    single-stream and 32-stream bulk MB/s (payload each way through the echo),
//	    stream open + 64-byte request + half-close + 64-byte response + close per
//	    second (8 in flight), and HeapInuse growth per idle open stream in this
//	    (the opening) process with -idle-streams streams open. The reference
//	    allocates a 64 KiB receive buffer per stream up front.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inconshreveable/muxado"
)

// Stream types the server subcommand gives a meaning to. Both sides of the
// interop suite use these numbers: keep them in step with go-peer.ts.
const (
	typeControl = 7
	typeClose   = 8
)

// out serialises JSON lines on stdout: several sessions report concurrently.
var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func emit(v interface{}) {
	out.Lock()
	defer out.Unlock()
	out.enc.Encode(v)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "muxado-peer: "+format+"\n", args...)
	os.Exit(1)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: muxado-peer server|client|echo-client|bench [flags] (see -h of each)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	watchStdin := fs.Bool("watch-stdin", true, "exit when stdin reaches EOF")

	switch cmd {
	case "server", "bench-server":
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
		fs.Parse(args)
		startStdinWatch(*watchStdin, 0)
		runServer(*listen)
	case "client":
		connect := fs.String("connect", "", "address of the muxado server")
		streams := fs.Int("streams", 16, "parallel streams")
		nbytes := fs.Int("bytes", 4<<20, "bytes written (and expected back) on each stream")
		idle := fs.Duration("idle", 0, "stay idle this long after the session starts")
		stype := fs.Uint("type", 0, "stream type put in each SYN")
		fs.Parse(args)
		startStdinWatch(*watchStdin, 3)
		runClient(*connect, *streams, *nbytes, *idle, uint32(*stype))
	case "echo-client":
		connect := fs.String("connect", "", "address of the muxado server")
		fs.Parse(args)
		startStdinWatch(*watchStdin, 0)
		runEchoClient(*connect)
	case "bench", "bench-client":
		connect := fs.String("connect", "", "address of an echo server")
		bulk := fs.Int("bulk-bytes", 64<<20, "bytes per bulk workload")
		rrSeconds := fs.Duration("rr-seconds", 3*time.Second, "duration of the request/response workload")
		idleStreams := fs.Int("idle-streams", 10000, "streams held open for the memory workload")
		fs.Parse(args)
		startStdinWatch(*watchStdin, 3)
		runBench(*connect, *bulk, *rrSeconds, *idleStreams)
	default:
		usage()
	}
}

// startStdinWatch makes the process exit once its parent closes our stdin
// (or dies): a test that crashes must not leave a Go peer behind. A client cut
// short this way exits with code 3, never with the 0 that means "verified".
func startStdinWatch(on bool, code int) {
	if !on {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		if code != 0 {
			fmt.Fprintln(os.Stderr, "muxado-peer: stdin closed before the run finished")
		}
		os.Exit(code)
	}()
}

// ---------------------------------------------------------------- server

func runServer(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fail("listen %s: %v", addr, err)
	}
	// The plain-text line go-peer.ts waits for; everything after it is JSON.
	out.Lock()
	fmt.Printf("LISTENING %d\n", l.Addr().(*net.TCPAddr).Port)
	out.Unlock()

	for {
		conn, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go serveSession(muxado.Server(conn), conn.RemoteAddr().String())
	}
}

func serveSession(sess muxado.Session, remote string) {
	go reportSessionEnd(sess, "server", remote)
	acceptLoop(sess, remote)
}

// acceptLoop handles every stream the remote opens until the session ends.
// remote (the peer's address) goes into each event: stream ids repeat across sessions.
func acceptLoop(sess muxado.Session, remote string) {
	for {
		str, err := sess.Accept()
		if err != nil {
			return
		}
		switch str.StreamType() {
		case typeControl:
			go control(sess, str)
		case typeClose:
			str.Close()
			emitStreamEnd(remote, str, 0, 0, nil)
		default:
			go echo(remote, str)
		}
	}
}

func reportSessionEnd(sess muxado.Session, role, remote string) {
	code, err, debug := sess.Wait()
	ev := map[string]interface{}{
		"event":  "session-end",
		"role":   role,
		"remote": remote,
		"code":   code,
		"debug":  string(debug),
	}
	if err != nil {
		ev["error"] = err.Error()
	}
	emit(ev)
}

// echo copies a stream back to its opener. When the read side reaches EOF it
// half-closes and then closes, like typical Go code: note that the reference's
// Close() after HalfClose() puts a second, empty DATA+FIN on the wire.
func echo(remote string, str muxado.Stream) {
	n, err := io.Copy(str, str)
	if err == nil {
		_, err = str.HalfClose(nil)
	}
	str.Close()
	emitStreamEnd(remote, str, n, n, err)
}

func emitStreamEnd(remote string, str muxado.Stream, read, written int64, err error) {
	ev := map[string]interface{}{
		"event":   "stream-end",
		"remote":  remote,
		"id":      str.Id(),
		"type":    str.StreamType(),
		"read":    read,
		"written": written,
	}
	if err != nil {
		ev["error"] = err.Error()
	}
	emit(ev)
}

// control serves a type-7 stream: the remote asks the reference to open
// streams towards it; the result goes back on the control stream.
func control(sess muxado.Session, str muxado.Stream) {
	defer str.Close()
	var streams, nbytes int
	line, err := bufio.NewReader(str).ReadString('\n')
	if err == nil {
		_, err = fmt.Sscanf(line, "%d %d", &streams, &nbytes)
	}
	var res result
	if err != nil {
		res = result{Error: fmt.Sprintf("bad control request %q: %v", line, err)}
	} else {
		res = openAndCheck(sess, streams, nbytes, 0)
	}
	b, _ := json.Marshal(res)
	str.HalfClose(append(b, '\n'))
}

// ---------------------------------------------------------------- client

type streamResult struct {
	Id     uint32 `json:"id"`
	Sha256 string `json:"sha256"`
}

type result struct {
	Ok       bool           `json:"ok"`
	Error    string         `json:"error,omitempty"`
	Streams  int            `json:"streams"`
	Bytes    int            `json:"bytes"`
	IdleMs   int64          `json:"idleMs"`
	Ms       int64          `json:"ms"`
	MBps     float64        `json:"mbps"`
	Results  []streamResult `json:"results"`
	Failures []string       `json:"failures,omitempty"`
}

func dial(addr string) (muxado.Session, net.Conn) {
	if addr == "" {
		fail("-connect is required")
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fail("dial %s: %v", addr, err)
	}
	return muxado.Client(conn), conn
}

// watchDeath reports, without blocking, whether the session has ended.
func watchDeath(sess muxado.Session) func() (bool, string) {
	var dead int32
	var reason atomic.Value
	go func() {
		code, err, debug := sess.Wait()
		reason.Store(fmt.Sprintf("code %d, error %v, remote debug %q", code, err, debug))
		atomic.StoreInt32(&dead, 1)
	}()
	return func() (bool, string) {
		if atomic.LoadInt32(&dead) == 0 {
			return false, ""
		}
		return true, reason.Load().(string)
	}
}

func runClient(addr string, streams, nbytes int, idle time.Duration, stype uint32) {
	sess, _ := dial(addr)
	isDead := watchDeath(sess)

	if idle > 0 {
		time.Sleep(idle)
		if dead, why := isDead(); dead {
			fail("session ended during the %v idle period: %s", idle, why)
		}
	}

	res := openAndCheck(sess, streams, nbytes, stype)
	res.IdleMs = idle.Milliseconds()
	if dead, why := isDead(); dead && res.Ok {
		res.Ok = false
		res.Error = "session ended before the client closed it: " + why
	}
	if !res.Ok {
		b, _ := json.Marshal(res)
		fail("%s\n%s", res.Error, b)
	}
	emit(res)
	// A clean end: GOAWAY(NO_ERROR) then close the transport.
	sess.Close()
}

// payload returns n deterministic pseudo-random bytes for stream number i.
func payload(i, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(int64(0x6d7578 + i))).Read(b)
	return b
}

// openAndCheck opens `streams` streams at once; each writes its payload while
// reading the echo concurrently, half-closes, and compares sha256 digests.
func openAndCheck(sess muxado.Session, streams, nbytes int, stype uint32) result {
	res := result{Streams: streams, Bytes: nbytes, Results: make([]streamResult, streams)}
	errs := make([]error, streams)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id, sum, err := oneStream(sess, payload(i, nbytes), stype)
			res.Results[i] = streamResult{Id: id, Sha256: sum}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Ms = elapsed.Milliseconds()
	res.MBps = float64(streams) * float64(nbytes) / (1 << 20) / elapsed.Seconds()
	for i, err := range errs {
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("stream %d (id %d): %v", i, res.Results[i].Id, err))
		}
	}
	res.Ok = len(res.Failures) == 0
	if !res.Ok {
		res.Error = fmt.Sprintf("%d of %d streams failed; first: %s", len(res.Failures), streams, res.Failures[0])
	}
	return res
}

func oneStream(sess muxado.Session, data []byte, stype uint32) (uint32, string, error) {
	str, err := sess.OpenStream(0, muxado.StreamType(stype), false)
	if err != nil {
		return 0, "", fmt.Errorf("open: %v", err)
	}
	defer str.Close()
	id := uint32(str.Id())

	writeErr := make(chan error, 1)
	go func() {
		// muxado cuts writes into frames of at most 16383 bytes itself.
		_, err := str.Write(data)
		if err == nil {
			_, err = str.HalfClose(nil)
		}
		writeErr <- err
	}()

	h := sha256.New()
	n, rerr := io.Copy(h, str)
	if werr := <-writeErr; werr != nil {
		return id, "", fmt.Errorf("write: %v", werr)
	}
	if rerr != nil {
		return id, "", fmt.Errorf("read after %d bytes: %v", n, rerr)
	}
	got := hex.EncodeToString(h.Sum(nil))
	want := sha256.Sum256(data)
	if got != hex.EncodeToString(want[:]) {
		return id, got, fmt.Errorf("echo mismatch: sent %d bytes sha256 %x, got %d bytes sha256 %s", len(data), want, n, got)
	}
	return id, got, nil
}

// ---------------------------------------------------------------- echo-client

func runEchoClient(addr string) {
	sess, conn := dial(addr)
	go acceptLoop(sess, conn.RemoteAddr().String())
	reportSessionEnd(sess, "echo-client", conn.RemoteAddr().String())
}

// ---------------------------------------------------------------- bench

type benchResult struct {
	Impl               string  `json:"impl"`
	SingleStreamMBps   float64 `json:"singleStreamMBps"`
	ParallelStreams    int     `json:"parallelStreams"`
	ParallelMBps       float64 `json:"parallelMBps"`
	RequestsPerSecond  float64 `json:"requestsPerSecond"`
	IdleStreams        int     `json:"idleStreams"`
	HeapBytesPerStream float64 `json:"heapBytesPerStream"`
}

func runBench(addr string, bulk int, rrFor time.Duration, idleStreams int) {
	res := benchResult{Impl: "go-muxado", ParallelStreams: 32, IdleStreams: idleStreams}

	// Bulk: MB/s of payload each way through an echo (written and read back).
	bulkRun := func(streams int) float64 {
		sess, _ := dial(addr)
		defer sess.Close()
		r := openAndCheck(sess, streams, bulk/streams, 0)
		if !r.Ok {
			fail("bench bulk x%d: %s", streams, r.Error)
		}
		return r.MBps
	}
	res.SingleStreamMBps = bulkRun(1)
	res.ParallelMBps = bulkRun(res.ParallelStreams)

	// Request/response: open, 64-byte request, half-close, 64-byte response, close.
	// A few workers keep several exchanges in flight, as a busy tunnel would.
	{
		sess, _ := dial(addr)
		req := payload(0, 64)
		var count int64
		deadline := time.Now().Add(rrFor)
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					str, err := sess.Open()
					if err != nil {
						fail("bench rr open: %v", err)
					}
					if _, err := str.HalfClose(req); err != nil {
						fail("bench rr write: %v", err)
					}
					// Read to EOF, so that Close() below does not race the
					// server's FIN (which would draw an RST for a gone stream).
					resp, err := io.ReadAll(str)
					if err != nil || len(resp) != len(req) {
						fail("bench rr read %d bytes: %v", len(resp), err)
					}
					str.Close()
					atomic.AddInt64(&count, 1)
				}
			}()
		}
		wg.Wait()
		res.RequestsPerSecond = float64(count) / time.Since(start).Seconds()
		sess.Close()
	}

	// Memory: HeapInuse growth while idleStreams streams are open and idle.
	{
		sess, _ := dial(addr)
		// One round trip first, so the session's own start-up allocations are
		// not counted against the streams.
		if r := openAndCheck(sess, 1, 64, 0); !r.Ok {
			fail("bench warm-up: %s", r.Error)
		}
		before := heapInuse()
		held := make([]muxado.Stream, 0, idleStreams)
		for i := 0; i < idleStreams; i++ {
			str, err := sess.Open()
			if err != nil {
				fail("bench idle open %d: %v", i, err)
			}
			held = append(held, str)
		}
		// Proof that the session still works with all of them open.
		if r := openAndCheck(sess, 1, 64, 0); !r.Ok {
			fail("bench idle check: %s", r.Error)
		}
		after := heapInuse()
		res.HeapBytesPerStream = float64(after-before) / float64(idleStreams)
		runtime.KeepAlive(held)
		sess.Close()
	}

	emit(res)
}

func heapInuse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
