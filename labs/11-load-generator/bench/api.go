// The Go twin of the tutorial's /api server, for `cargo xtask bench`: the
// same JSON answer as lab 02's solution, so the two can be compared on equal
// terms. Run: go run api.go -port 0 -delay 50ms
//
// It prints "go-api listening on http://ADDR" like the labs' servers, and
// stops on SIGTERM or Ctrl-C.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

type served struct {
	RequestNum uint64 `json:"request_num"`
	Method     string `json:"method"`
	Path       string `json:"path"`
}

func main() {
	port := flag.Int("port", 8080, "port on 127.0.0.1 (0: any free port)")
	delay := flag.Duration("delay", 50*time.Millisecond, "simulated audit-log write per request")
	flag.Parse()

	var counter atomic.Uint64
	http.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		n := counter.Add(1)
		if *delay > 0 {
			time.Sleep(*delay)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(served{RequestNum: n, Method: r.Method, Path: r.URL.Path})
	})

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-api:", err)
		os.Exit(1)
	}
	fmt.Printf("go-api listening on http://%s (Ctrl-C to stop)\n", listener.Addr())
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		os.Exit(0)
	}()
	http.Serve(listener, nil)
}
