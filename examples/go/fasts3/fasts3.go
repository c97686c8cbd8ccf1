// Package fasts3 wraps libfasts3's C ABI for Go (cgo).
//
// Errors: every call hands its own fasts3_error back through its trailing
// `fasts3_error **` argument, and that is what becomes the Go error. The thread-local
// fasts3_last_error_* accessors are never used: a goroutine may move to another OS thread
// between two cgo calls, so "the last error of this thread" may belong to another goroutine.
//
// Memory: Go slices and strings are passed to C for the duration of one call only; libfasts3
// keeps no pointer into them after it returns (as the cgo pointer rules require). The
// library is linked from the repository (include/ and pyfasts3/libfasts3.so, built with
// `python build.py`).
package fasts3

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../pyfasts3 -Wl,-rpath,${SRCDIR}/../../../pyfasts3 -lfasts3
#include <stdlib.h>
#include "fasts3.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Status is a fasts3_status value.
type Status int

const (
	OK           Status = C.FASTS3_OK
	NoSuchKey    Status = C.FASTS3_NO_SUCH_KEY
	NoSuchBucket Status = C.FASTS3_NO_SUCH_BUCKET
	Cancelled    Status = C.FASTS3_CANCELLED
)

// String is the name the header gives the status ("FASTS3_NO_SUCH_KEY").
func (s Status) String() string { return C.GoString(C.fasts3_status_name(C.int32_t(s))) }

// Error is one failed call: every field of its fasts3_error, copied into Go memory.
type Error struct {
	Status     Status
	Code       string // the S3 error code ("NoSuchKey"), "" without an S3 response
	Message    string
	HTTPStatus int // 0 without a response
	RequestID  string
	Bucket     string
	Key        string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v: %s", e.Status, e.Message)
}

// check turns a call's status and error object into a Go error, freeing the error object.
func check(status C.enum_fasts3_status, err *C.fasts3_error) error {
	if status == C.FASTS3_OK {
		return nil
	}
	defer C.fasts3_error_free(err)
	return &Error{
		Status:     Status(C.fasts3_error_status(err)),
		Code:       C.GoString(C.fasts3_error_code(err)),
		Message:    C.GoString(C.fasts3_error_message(err)),
		HTTPStatus: int(C.fasts3_error_http_status(err)),
		RequestID:  C.GoString(C.fasts3_error_request_id(err)),
		Bucket:     C.GoString(C.fasts3_error_bucket(err)),
		Key:        C.GoString(C.fasts3_error_key(err)),
	}
}

// str passes a Go string as the (ptr, len) UTF-8 the C ABI takes; valid during one call.
func str(s string) (*C.uint8_t, C.size_t) {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// buf passes a Go byte slice (NULL when empty); valid during one call.
func buf(b []byte) (*C.uint8_t, C.size_t) {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

// Client is an S3 client. Its methods may be called from any number of goroutines at once;
// Close must not run while a call is in progress.
type Client struct {
	c *C.fasts3_client
}

// NewClient makes a client configured from the environment (AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID, AWS_REGION, ~/.aws/..., as the AWS SDKs read them).
func NewClient() (*Client, error) {
	var c *C.fasts3_client
	var err *C.fasts3_error
	// (The call is made before check reads err: Go leaves the order of evaluating a call
	// and a plain variable in one argument list unspecified.)
	st := C.fasts3_client_new(nil, &c, &err)
	if e := check(st, err); e != nil {
		return nil, e
	}
	return &Client{c}, nil
}

// Close releases the client.
func (c *Client) Close() {
	C.fasts3_client_free(c.c)
	c.c = nil
}

// GetInto fills dst with the object's bytes from offset (parallel ranged GETs) and returns
// how many it wrote: len(dst), or fewer where the object ends.
func (c *Client) GetInto(bucket, key string, offset uint64, dst []byte) (int, error) {
	b, bl := str(bucket)
	k, kl := str(key)
	d, dl := buf(dst)
	var written C.uint64_t
	var err *C.fasts3_error
	st := C.fasts3_get_into(c.c, b, bl, k, kl, C.uint64_t(offset), d, dl, nil, &written, &err)
	return int(written), check(st, err)
}

// Range is Length bytes from Offset; a negative Offset counts from the end of the object.
type Range struct {
	Offset int64
	Length uint64
}

// GetRanges reads ranges of one version of an object into dst, packed in order (close ones
// with one request), and returns how many bytes each range got.
func (c *Client) GetRanges(bucket, key string, ranges []Range, dst []byte) ([]uint64, error) {
	cr := make([]C.fasts3_range, len(ranges))
	for i, r := range ranges {
		cr[i] = C.fasts3_range{offset: C.int64_t(r.Offset), length: C.uint64_t(r.Length)}
	}
	lengths := make([]uint64, len(ranges))
	b, bl := str(bucket)
	k, kl := str(key)
	d, dl := buf(dst)
	var err *C.fasts3_error
	st := C.fasts3_get_ranges(c.c, b, bl, k, kl, unsafe.SliceData(cr), C.size_t(len(cr)), C.FASTS3_DEFAULT_MAX_GAP,
		d, dl, nil, nil, (*C.uint64_t)(unsafe.SliceData(lengths)), &err)
	return lengths, check(st, err)
}

// PutFrom uploads data as the object (one PUT, or parts sent straight from data above the
// multipart threshold) and returns the number of parts, 0 for one PUT.
func (c *Client) PutFrom(bucket, key string, data []byte) (int, error) {
	b, bl := str(bucket)
	k, kl := str(key)
	d, dl := buf(data)
	var parts C.uint32_t
	var err *C.fasts3_error
	st := C.fasts3_put_from(c.c, b, bl, k, kl, d, dl, nil, nil, &parts, &err)
	return int(parts), check(st, err)
}

// Object is one entry of a listing.
type Object struct {
	Key  string
	Size uint64
	ETag string
}

// List returns every object under prefix, in S3's order.
func (c *Client) List(bucket, prefix string) ([]Object, error) {
	b, bl := str(bucket)
	p, pl := str(prefix)
	var page *C.fasts3_object_page
	var err *C.fasts3_error
	st := C.fasts3_list_all(c.c, b, bl, p, pl, nil, false, nil, &page, &err)
	if e := check(st, err); e != nil {
		return nil, e
	}
	defer C.fasts3_object_page_free(page)
	var view C.fasts3_object_page_view
	st = C.fasts3_object_page_get_view(page, &view, &err)
	if e := check(st, err); e != nil {
		return nil, e
	}
	n := int(view.count)
	sizes := unsafe.Slice((*uint64)(unsafe.Pointer(view.sizes)), n)
	objects := make([]Object, n)
	for i := range objects {
		objects[i] = Object{Key: at(view.keys, i), Size: sizes[i], ETag: at(view.etags, i)}
	}
	return objects, nil
}

// at copies string i of a page's packed strings into Go memory.
func at(s C.fasts3_strings, i int) string {
	offsets := unsafe.Slice((*C.size_t)(unsafe.Pointer(s.offsets)), int(s.count)+1)
	start := unsafe.Add(unsafe.Pointer(s.data), uintptr(offsets[i]))
	return C.GoStringN((*C.char)(start), C.int(offsets[i+1]-offsets[i]-1))
}

// Upload is a streamed multipart upload. One call at a time; Close aborts it if unfinished.
type Upload struct {
	u *C.fasts3_upload
}

// BeginUpload starts a streamed upload of an object whose size need not be known.
func (c *Client) BeginUpload(bucket, key string) (*Upload, error) {
	b, bl := str(bucket)
	k, kl := str(key)
	var u *C.fasts3_upload
	var err *C.fasts3_error
	st := C.fasts3_upload_begin(c.c, b, bl, k, kl, nil, nil, &u, &err)
	if e := check(st, err); e != nil {
		return nil, e
	}
	return &Upload{u}, nil
}

// WritePart sends p as the next part (at least 5 MiB but for the last). p is copied: it may
// be reused as soon as this returns.
func (u *Upload) WritePart(p []byte) error {
	d, dl := buf(p)
	var err *C.fasts3_error
	st := C.fasts3_upload_write_part(u.u, d, dl, nil, &err)
	return check(st, err)
}

// Finish waits for the parts and completes the upload; returns the number of parts.
func (u *Upload) Finish() (int, error) {
	var parts C.uint32_t
	var err *C.fasts3_error
	st := C.fasts3_upload_finish(u.u, nil, &parts, &err)
	return int(parts), check(st, err)
}

// Close releases the upload, aborting it (no parts left stored) if it was not finished.
func (u *Upload) Close() {
	C.fasts3_upload_free(u.u)
	u.u = nil
}
