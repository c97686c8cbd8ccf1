// Command fasts3example drives libfasts3 from many goroutines at once through the fasts3
// package, and checks every byte it reads.
//
//	go build -o fasts3-go-example . && ./fasts3-go-example BUCKET PREFIX
//
// Endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL, ...).
// PREFIX + "seed.bin" must exist and hold pattern bytes with salt 0 (see patternByte;
// tests/test_embedding.py uploads it). Each of `workers` goroutines reads it whole and in
// ranges, writes objects and reads them back, reads a missing key (its error must name that
// key: errors belong to the call, not to the OS thread), and lists what it wrote; another
// goroutine streams an upload meanwhile. Any wrong byte or unexpected error prints
// "FAILED: ..." and exits with status 1.
package main

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sync"

	"fasts3example/fasts3"
)

const (
	workers = 16
	rounds  = 3
	mib     = 1 << 20
)

// patternByte is byte i of a test object written with salt. Not periodic, so a block
// delivered at the wrong offset shows. tests/test_embedding.py and examples/cpp use the same.
func patternByte(i, salt uint64) byte {
	return byte((i*0x9E3779B97F4A7C15 + salt*0xBF58476D1CE4E5B9) >> 56)
}

func pattern(size int, salt uint64) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = patternByte(uint64(i), salt)
	}
	return data
}

// checkBytes fails unless got holds bytes [offset, offset+len(got)) of the object of salt.
func checkBytes(what string, got []byte, offset, salt uint64) error {
	for i, b := range got {
		if want := patternByte(offset+uint64(i), salt); b != want {
			return fmt.Errorf("%s: wrong byte at offset %d: got %d, expected %d", what, offset+uint64(i), b, want)
		}
	}
	return nil
}

// readBack reads key whole and checks every byte.
func readBack(c *fasts3.Client, bucket, key string, size int, salt uint64) error {
	got := make([]byte, size)
	n, err := c.GetInto(bucket, key, 0, got)
	if err != nil {
		return fmt.Errorf("get_into %s: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("get_into %s: %d bytes of %d", key, n, size)
	}
	return checkBytes(key, got, 0, salt)
}

// threadSet records the OS threads the goroutines' calls ran on.
type threadSet struct {
	mu  sync.Mutex
	ids map[int]bool
}

func (t *threadSet) note() {
	t.mu.Lock()
	t.ids[osThread()] = true
	t.mu.Unlock()
}

// worker does `rounds` rounds of reading, ranging, writing, a failing read, then a listing.
func worker(c *fasts3.Client, bucket, prefix string, w int, seedSize int, threads *threadSet) error {
	rng := rand.New(rand.NewSource(int64(w)))
	seed := prefix + "seed.bin"
	mine := fmt.Sprintf("%sgo/w%02d/", prefix, w)
	sizes := map[string]uint64{}
	for r := 0; r < rounds; r++ {
		threads.note()
		if err := readBack(c, bucket, seed, seedSize, 0); err != nil {
			return err
		}
		threads.note()

		// Eight random ranges and the last 1000 bytes, into one buffer.
		ranges := []fasts3.Range{{Offset: -1000, Length: 1000}}
		for i := 0; i < 8; i++ {
			ranges = append(ranges, fasts3.Range{Offset: rng.Int63n(int64(seedSize) - 70000), Length: uint64(1 + rng.Intn(65536))})
		}
		total := uint64(0)
		for _, rg := range ranges {
			total += rg.Length
		}
		packed := make([]byte, total)
		lengths, err := c.GetRanges(bucket, seed, ranges, packed)
		if err != nil {
			return fmt.Errorf("get_ranges: %w", err)
		}
		at := uint64(0)
		for i, rg := range ranges {
			start := uint64(rg.Offset)
			if rg.Offset < 0 {
				start = uint64(seedSize) - rg.Length
			}
			if lengths[i] != rg.Length {
				return fmt.Errorf("get_ranges: range %d got %d bytes of %d", i, lengths[i], rg.Length)
			}
			if err := checkBytes("get_ranges", packed[at:at+rg.Length], start, 0); err != nil {
				return err
			}
			at += rg.Length
		}
		threads.note()

		// Write an object of our own and read it back.
		key := fmt.Sprintf("%sr%d.bin", mine, r)
		size, salt := 100000+1000*w+r, uint64(100+10*w+r)
		if _, err := c.PutFrom(bucket, key, pattern(size, salt)); err != nil {
			return fmt.Errorf("put_from %s: %w", key, err)
		}
		sizes[key] = uint64(size)
		if err := readBack(c, bucket, key, size, salt); err != nil {
			return err
		}
		threads.note()

		// A missing key: the error is this call's own, whichever thread ran it.
		missing := fmt.Sprintf("%sgo/missing/w%02d-r%d", prefix, w, r)
		_, err = c.GetInto(bucket, missing, 0, make([]byte, 10))
		var e *fasts3.Error
		if !errors.As(err, &e) || e.Status != fasts3.NoSuchKey || e.HTTPStatus != 404 || e.Key != missing || e.Bucket != bucket {
			return fmt.Errorf("reading missing key %s: expected FASTS3_NO_SUCH_KEY naming it, got %#v", missing, err)
		}
		threads.note()
	}

	// List what this worker wrote.
	objects, err := c.List(bucket, mine)
	if err != nil {
		return fmt.Errorf("list %s: %w", mine, err)
	}
	if len(objects) != len(sizes) {
		return fmt.Errorf("list %s: %d objects, expected %d", mine, len(objects), len(sizes))
	}
	for _, o := range objects {
		if sizes[o.Key] != o.Size {
			return fmt.Errorf("list %s: %s has size %d, expected %d", mine, o.Key, o.Size, sizes[o.Key])
		}
	}
	return nil
}

// streamed writes an object in two parts (5 MiB and the rest) and reads it back.
func streamed(c *fasts3.Client, bucket, key string) error {
	size, salt := 5*mib+100000, uint64(7)
	data := pattern(size, salt)
	up, err := c.BeginUpload(bucket, key)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	defer up.Close() // aborts the upload if it did not finish
	for offset := 0; offset < size; offset += 5 * mib {
		if err := up.WritePart(data[offset:min(size, offset+5*mib)]); err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
	}
	parts, err := up.Finish()
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	if parts != 2 {
		return fmt.Errorf("upload %s: %d parts, expected 2", key, parts)
	}
	return readBack(c, bucket, key, size, salt)
}

func run(bucket, prefix string) error {
	c, err := fasts3.NewClient()
	if err != nil {
		return err
	}
	defer c.Close()

	objects, err := c.List(bucket, prefix)
	if err != nil {
		return err
	}
	seedSize := -1
	for _, o := range objects {
		if o.Key == prefix+"seed.bin" {
			seedSize = int(o.Size)
		}
	}
	if seedSize < 100000 {
		return fmt.Errorf("no %sseed.bin of at least 100000 bytes in the listing", prefix)
	}

	threads := &threadSet{ids: map[int]bool{}}
	errs := make([]error, workers+1)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs[w] = worker(c, bucket, prefix, w, seedSize, threads)
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[workers] = streamed(c, bucket, prefix+"go/stream.bin")
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("%d goroutines x %d rounds (get_into, get_ranges, put_from, a per-call error, list) "+
		"and a streamed upload: every byte verified, on %d OS threads\n", workers, rounds, len(threads.ids))
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s BUCKET PREFIX\n", os.Args[0])
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("OK: all checks passed")
}
