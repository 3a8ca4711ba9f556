// Command extprocref is the benchmark's compiled reference: an ext_proc server in Go
// (grpc-go with go-control-plane's generated types) on a Unix socket, doing either nothing
// (-mode passthrough, the floor of a compiled engine) or exactly the header work of the
// bench's headers-5ts chain (-mode headers-5), so Tollgate's CPU per request can be read
// as a ratio to a compiled server doing the same work.
package main

import (
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

func main() {
	socket := flag.String("socket", "", "Unix socket path to listen on")
	mode := flag.String("mode", "passthrough", "passthrough | headers-5")
	flag.Parse()
	var handler func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse
	switch *mode {
	case "passthrough":
		handler = passThrough
	case "headers-5":
		handler = fiveHeaders
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	if *socket == "" {
		log.Fatal("-socket is required")
	}
	_ = os.Remove(*socket)
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(server, &processor{handle: handler})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		server.GracefulStop()
	}()
	if err := server.Serve(listener); err != nil {
		log.Fatal(err)
	}
}

type processor struct {
	extprocv3.UnimplementedExternalProcessorServer
	handle func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse
}

// Process answers each message in order; the stream ends when Envoy half-closes it, as in Tollgate.
func (p *processor) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		request, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if response := p.handle(request); response != nil {
			if err := stream.Send(response); err != nil {
				return err
			}
		}
	}
}

// The mode Tollgate sends for a route without policies: nothing after the request headers.
var passThroughMode = &filterv3.ProcessingMode{
	ResponseHeaderMode:  filterv3.ProcessingMode_SKIP,
	RequestBodyMode:     filterv3.ProcessingMode_NONE,
	ResponseBodyMode:    filterv3.ProcessingMode_NONE,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

// The mode Tollgate sends for a headers-only chain with response policies.
var responseHeadersMode = &filterv3.ProcessingMode{
	ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
	RequestBodyMode:     filterv3.ProcessingMode_NONE,
	ResponseBodyMode:    filterv3.ProcessingMode_NONE,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

func passThrough(request *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch request.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: passThroughMode,
		}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
		}
	default:
		return nil
	}
}
