package main

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// headers is a phase's header map with the names a policy touched, as Tollgate keeps it:
// the answer carries the net change of each touched header, not the steps.
type headers struct {
	values  map[string][]string
	touched []string
}

func load(m *corev3.HeaderMap) *headers {
	h := &headers{values: make(map[string][]string, len(m.GetHeaders()))}
	for _, header := range m.GetHeaders() {
		if strings.HasPrefix(header.Key, ":") {
			continue
		}
		value := header.Value
		if len(header.RawValue) > 0 {
			value = string(header.RawValue)
		}
		h.values[header.Key] = append(h.values[header.Key], value)
	}
	return h
}

func (h *headers) touch(name string) {
	for _, seen := range h.touched {
		if seen == name {
			return
		}
	}
	h.touched = append(h.touched, name)
}

func (h *headers) set(name, value string) {
	h.values[name] = []string{value}
	h.touch(name)
}

func (h *headers) remove(name string) {
	delete(h.values, name)
	h.touch(name)
}

// mutation is the net change: each touched header overwritten with its values, or removed.
func (h *headers) mutation() *extprocv3.CommonResponse {
	if len(h.touched) == 0 {
		return nil
	}
	mutation := &extprocv3.HeaderMutation{}
	for _, name := range h.touched {
		values := h.values[name]
		if len(values) == 0 {
			mutation.RemoveHeaders = append(mutation.RemoveHeaders, name)
			continue
		}
		for i, value := range values {
			option := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, RawValue: []byte(value)}}
			if i > 0 {
				option.Append = wrapperspb.Bool(true)
			}
			mutation.SetHeaders = append(mutation.SetHeaders, option)
		}
	}
	return &extprocv3.CommonResponse{HeaderMutation: mutation}
}

// policy is one of the five header policies of headers-5ts: a change per phase.
type policy struct {
	request  func(*headers)
	response func(*headers)
}

func setHeaders(request, response string) policy {
	return policy{
		request:  func(h *headers) { h.set(request, "bench") },
		response: func(h *headers) { h.set(response, "bench") },
	}
}

func removeHeaders(request, response string) policy {
	return policy{
		request:  func(h *headers) { h.remove(request) },
		response: func(h *headers) { h.remove(response) },
	}
}

// The headers-5ts chain (scripts/bench/scenarios.ts): request phase in order, response reversed.
var chain = []policy{
	setHeaders("x-bench-1", "x-bench-r1"),
	removeHeaders("x-client-debug", "x-upstream"),
	setHeaders("x-bench-2", "x-bench-r2"),
	removeHeaders("x-bench-1", "x-bench-r1"),
	setHeaders("x-bench-3", "x-bench-r3"),
}

func fiveHeaders(request *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch message := request.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		h := load(message.RequestHeaders.GetHeaders())
		for _, p := range chain {
			p.request(h)
		}
		return &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestHeaders{
				RequestHeaders: &extprocv3.HeadersResponse{Response: h.mutation()},
			},
			ModeOverride: responseHeadersMode,
		}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		h := load(message.ResponseHeaders.GetHeaders())
		for i := len(chain) - 1; i >= 0; i-- {
			chain[i].response(h)
		}
		return &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ResponseHeaders{
				ResponseHeaders: &extprocv3.HeadersResponse{Response: h.mutation()},
			},
		}
	default:
		return passThrough(request)
	}
}
