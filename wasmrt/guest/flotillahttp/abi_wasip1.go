//go:build wasip1

package flotillahttp

import "unsafe"

//go:wasmimport flotilla http_request
func httpRequest(reqPtr unsafe.Pointer, reqLen uint32, respPtr unsafe.Pointer, respCap uint32) int64

//go:wasmimport flotilla http_response
func httpResponse(respPtr unsafe.Pointer, respCap uint32) int64

//go:wasmimport flotilla nats_publish
func natsPublish(subjectPtr unsafe.Pointer, subjectLen uint32, dataPtr unsafe.Pointer, dataLen uint32) int32

// firstBuffer is the response buffer tried first; most answers fit, and a
// larger one costs a second host call, not a second request.
const firstBuffer = 64 << 10

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// exchange sends one serialized request and returns the serialized
// response.
func exchange(req []byte) ([]byte, error) {
	buf := make([]byte, firstBuffer)
	n := httpRequest(ptr(req), uint32(len(req)), ptr(buf), uint32(len(buf)))
	if n < 0 {
		return nil, codeError(n)
	}
	if n > int64(len(buf)) {
		// The host kept the response; fetch it with a buffer that fits.
		buf = make([]byte, n)
		n = httpResponse(ptr(buf), uint32(len(buf)))
		if n < 0 {
			return nil, codeError(n)
		}
		if n > int64(len(buf)) {
			return nil, codeError(-7)
		}
	}
	return buf[:n], nil
}

func publish(subject string, data []byte) error {
	s := []byte(subject)
	if rc := natsPublish(ptr(s), uint32(len(s)), ptr(data), uint32(len(data))); rc < 0 {
		return codeError(int64(rc))
	}
	return nil
}
