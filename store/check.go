package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// ErrDamaged is what every *DamagedError matches with errors.Is.
var ErrDamaged = errors.New("store file is damaged")

// DamagedError says that the store file at Path cannot be read safely, and why.
type DamagedError struct {
	Path    string
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store file %s is damaged: %s", e.Path, e.Problem)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// Report is what Check found in a store file.
type Report struct {
	Path string
	Size int64 // bytes
	// Chats and Messages count what was read: every chat, and the messages
	// of the chats read whole.
	Chats, Messages int
	// Damaged lists the chats some of whose messages could not be read.
	Damaged []DamagedChat
	// Problems says what is wrong; it is empty when the file is sound.
	Problems []string
	// Notes are findings that lose nothing, such as pages bbolt can no longer
	// reuse (the file is larger than it needs to be).
	Notes []string
}

// DamagedChat is a chat whose history could not be read whole.
type DamagedChat struct {
	Chat    conversation.ChatID
	Problem string
}

// OK reports whether the file is sound.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// summary is the report's problems in one line.
func (r *Report) summary() string {
	s := r.Problems[0]
	switch n := len(r.Problems) - 1; {
	case n == 1:
		s += "; and one more problem"
	case n > 1:
		s += fmt.Sprintf("; and %d more problems", n)
	}
	return s
}

const maxProblems = 20 // listed one by one; the rest are counted

func (r *Report) problem(format string, args ...any) {
	switch n := len(r.Problems); {
	case n < maxProblems:
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	case n == maxProblems:
		r.Problems = append(r.Problems, "more problems not listed")
	}
}

// Check reads the whole store file at path without changing it and reports
// what it found: that the file is as long as its pages need, that every page
// of every chat and of the other records can be read, that every stored
// message decodes, and bbolt's own consistency check (tx.Check). It fails with
// ErrLocked while a running bot has the file open.
func Check(path string, opt Options) (*Report, error) {
	return inspect(path, opt.lockTimeout(), true)
}

// verify is Check as Open runs it, without decoding the messages: it returns a
// *DamagedError when the file is damaged and nil for a sound, empty or
// missing file.
func verify(path string, timeout time.Duration) error {
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil // Open creates it, or reports why it cannot
	}
	r, err := inspect(path, timeout, false)
	if err != nil {
		return err
	}
	if !r.OK() {
		return &DamagedError{Path: path, Problem: r.summary()}
	}
	return nil
}

// inspect opens the file read-only (no writer can change it meanwhile, and
// bbolt then reads neither the free-page list nor anything else before it is
// asked to) and reads all of it.
func inspect(path string, timeout time.Duration, decode bool) (*Report, error) {
	r := &Report{Path: path}
	h, problem, err := readHeader(path)
	if err != nil {
		return nil, fmt.Errorf("check store %s: %w", path, err)
	}
	r.Size = h.size
	if h.size == 0 {
		r.Notes = append(r.Notes, "the file is empty: the bot will start a new store in it")
		return r, nil
	}
	if problem != "" && h.pageSize == 0 {
		r.problem("%s", problem) // no meta page to go by: bbolt cannot open it at all
		return r, nil
	}
	b, err := openReadOnly(path, timeout)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("check store %s: %w", path, err)
		}
		if problem == "" {
			problem = err.Error()
		}
		r.problem("%s", problem)
		return r, nil
	}
	defer b.Close()
	if problem != "" {
		r.problem("%s", problem)
	}
	// bbolt asks the kernel not to read ahead in its mapping (MADV_RANDOM), so
	// a walk over a file that is not in the page cache reads it one page at a
	// time: 2 to 3 s for 100 MB on the test machine, against 0.3 s when the
	// file is read straight through first (docs/BENCHMARKS.md).
	if err := readThrough(path); err != nil {
		return nil, fmt.Errorf("check store %s: %w", path, err)
	}
	readable := scan(b, path, decode, r)
	if readable && problem == "" {
		boltCheck(b, path, r)
	}
	return r, nil
}

// readThrough reads the file at path from start to end, which leaves it in the
// page cache.
func readThrough(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
	return err
}

// openReadOnly opens the bbolt file at path for reading, waiting up to timeout
// for a writer's lock.
func openReadOnly(path string, timeout time.Duration) (*bbolt.DB, error) {
	var b *bbolt.DB
	err := protect(path, func() (err error) {
		b, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
		return err
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, ErrLocked
	}
	return b, err
}

// scan reads every bucket of b, each in its own read transaction so that
// damage in one chat does not hide the others, and fills r. It reports
// whether every page it reached was readable: only then is bbolt's check,
// which reads the same pages in a goroutine of its own where a fault could not
// be recovered, safe to run.
func scan(b *bbolt.DB, path string, decode bool, r *Report) (readable bool) {
	var tops [][]byte
	err := protect(path, func() error {
		return b.View(func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				tops = append(tops, bytes.Clone(name))
				return nil
			})
		})
	})
	if err != nil {
		r.problem("the list of buckets cannot be read: %s", problemOf(err))
		return false
	}
	readable = true
	var sum byte // what touch read, kept so that the reads stay
	var walkTree func(names [][]byte)
	walkTree = func(names [][]byte) {
		chat := len(names) == 2 && bytes.Equal(names[0], bucketChats)
		n, bad := 0, 0
		nested, _, err := walk(b, path, names, false, func(k, v []byte) {
			sum ^= touch(k) ^ touch(v)
			n++
			if chat && decode {
				var m conversation.Message
				if json.Unmarshal(v, &m) != nil {
					bad++
				}
			}
		})
		switch {
		case err != nil:
			readable = false
			if chat {
				r.Damaged = append(r.Damaged, DamagedChat{Chat: conversation.ChatID(names[1]), Problem: problemOf(err)})
			} else {
				r.problem("bucket %s: %s", bucketPath(names), problemOf(err))
			}
		case bad > 0:
			r.Damaged = append(r.Damaged, DamagedChat{Chat: conversation.ChatID(names[1]),
				Problem: fmt.Sprintf("%d of its %d messages do not decode", bad, n)})
		case chat:
			r.Messages += n
		}
		if chat {
			r.Chats++
		}
		for _, name := range nested {
			walkTree(append(names[:len(names):len(names)], name))
		}
	}
	for _, name := range tops {
		walkTree([][]byte{name})
	}
	if len(r.Damaged) > 0 {
		ids := make([]string, 0, 5)
		for _, d := range r.Damaged[:min(len(r.Damaged), 5)] {
			ids = append(ids, string(d.Chat))
		}
		more := ""
		if len(r.Damaged) > len(ids) {
			more = ", …"
		}
		r.problem("%d of %d chats cannot be read whole (%s%s)", len(r.Damaged), r.Chats, strings.Join(ids, ", "), more)
	}
	return readable
}

// boltCheck runs bbolt's consistency check on b and adds what it finds to r.
// Pages that are neither in use nor free waste space and lose nothing: they
// are notes, not problems.
func boltCheck(b *bbolt.DB, path string, r *Report) {
	leaked := 0
	err := protect(path, func() error {
		return b.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				if strings.HasSuffix(err.Error(), "unreachable unfreed") {
					leaked++
					continue
				}
				r.problem("%v", err)
			}
			return nil
		})
	})
	if err != nil {
		r.problem("%s", problemOf(err))
	}
	if leaked > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d pages are neither in use nor free (space bbolt cannot reuse; nothing is lost)", leaked))
	}
}

// walk reads the bucket at names (a path from the root) in one read
// transaction, oldest key first or, when reverse, newest first, calling visit
// with each value. It returns the names of the nested buckets, the bucket's
// sequence, and the error that stopped it early (a damaged page), if any.
// visit must copy what it keeps.
func walk(b *bbolt.DB, path string, names [][]byte, reverse bool, visit func(k, v []byte)) (nested [][]byte, seq uint64, err error) {
	err = protect(path, func() error {
		return b.View(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(names[0])
			for _, n := range names[1:] {
				if bk == nil {
					break
				}
				bk = bk.Bucket(n)
			}
			if bk == nil {
				return fmt.Errorf("bucket %s is missing", bucketPath(names))
			}
			seq = bk.Sequence()
			c := bk.Cursor()
			first, next := c.First, c.Next
			if reverse {
				first, next = c.Last, c.Prev
			}
			for k, v := first(); k != nil; k, v = next() {
				if v == nil && bk.Bucket(k) != nil {
					nested = append(nested, bytes.Clone(k))
					continue
				}
				visit(k, v)
			}
			return nil
		})
	})
	return nested, seq, err
}

// touch reads one byte of every page b spans, so that a page missing from a
// truncated file faults here, where protect recovers it. The sum it returns
// keeps the reads from being optimised away.
func touch(b []byte) (sum byte) {
	for i := 0; i < len(b); i += 1024 {
		sum ^= b[i]
	}
	if len(b) > 0 {
		sum ^= b[len(b)-1]
	}
	return sum
}

func bucketPath(names [][]byte) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(parts, "/")
}

// problemOf is the problem a *DamagedError describes, or err's text.
func problemOf(err error) string {
	var d *DamagedError
	if errors.As(err, &d) {
		return d.Problem
	}
	return err.Error()
}

// bbolt's file layout (go.etcd.io/bbolt/internal/common), read here from the
// file itself before bbolt maps it: bbolt trusts these numbers, and a page
// they point to past the end of a truncated file faults when read.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	// meta: magic, version, page size, flags u32; root, sequence, freelist,
	// pgid (high-water mark), txid, checksum u64.
	metaSize     = 64
	freelistFlag = 0x10
	noFreelist   = ^uint64(0)
)

// header is what the newest valid meta page of a bbolt file says.
type header struct {
	size     int64 // the file's length in bytes
	pageSize int64
	pages    uint64 // the high-water mark: pages 0 … pages-1 are in use
	root     uint64 // the root bucket's page
	freelist uint64 // the free-page list's first page
	txid     uint64
}

// readHeader reads the meta pages of the bbolt file at path and checks that
// the pages they count all lie in the file, and that the free-page list they
// point to is one (bbolt reads it when it opens a file for writing, before any
// check could run). It returns the problem found, or "". A missing file is an
// error; an empty one has size 0 and no problem.
func readHeader(path string) (h header, problem string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return h, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return h, "", err
	}
	size := fi.Size()
	if size == 0 {
		return header{}, "", nil
	}
	read := func(off int64, n int) []byte {
		buf := make([]byte, n)
		got, _ := f.ReadAt(buf, off)
		return buf[:got]
	}
	var metas []header
	m0, ok0 := parseMeta(read(0, pageHeaderSize+metaSize))
	if ok0 {
		metas = append(metas, m0)
	}
	// The second meta page is one page further; without the first one, try
	// the page sizes bbolt does.
	for i := range 15 {
		pos := int64(1024) << i
		if ok0 {
			pos = m0.pageSize
		}
		if pos >= size {
			break
		}
		if m1, ok := parseMeta(read(pos, pageHeaderSize+metaSize)); ok && m1.pageSize == pos {
			metas = append(metas, m1)
			break
		}
		if ok0 {
			break
		}
	}
	if len(metas) == 0 {
		return header{size: size}, "neither of its two meta pages is valid (it is not a bbolt file, or its first pages were overwritten)", nil
	}
	h = metas[0]
	if len(metas) == 2 && metas[1].txid > h.txid {
		h = metas[1]
	}
	h.size = size
	if h.pageSize < 512 || h.pageSize&(h.pageSize-1) != 0 {
		return h, fmt.Sprintf("its meta page gives an impossible page size, %d", h.pageSize), nil
	}
	if need := int64(h.pages) * h.pageSize; h.pages > uint64(1<<62)/uint64(h.pageSize) || size < need {
		return h, fmt.Sprintf("it is %d bytes long, but its %d pages of %d bytes need %d: "+
			"its end is missing (an interrupted copy or restore, or a file system that lost it in a crash)", size, h.pages, h.pageSize, need), nil
	}
	if h.root >= h.pages {
		return h, fmt.Sprintf("its root page (%d) lies past its last page (%d)", h.root, h.pages-1), nil
	}
	if h.freelist == noFreelist {
		return h, "", nil
	}
	if h.freelist < 2 || h.freelist >= h.pages {
		return h, fmt.Sprintf("its free-page list (page %d) lies outside its pages (2 to %d)", h.freelist, h.pages-1), nil
	}
	p := read(int64(h.freelist)*h.pageSize, pageHeaderSize+8)
	if len(p) < pageHeaderSize+8 {
		return h, fmt.Sprintf("its free-page list (page %d) cannot be read", h.freelist), nil
	}
	ne := binary.NativeEndian
	id, flags, count, overflow := ne.Uint64(p), ne.Uint16(p[8:]), uint64(ne.Uint16(p[10:])), uint64(ne.Uint32(p[12:]))
	if id != h.freelist || flags&freelistFlag == 0 {
		return h, fmt.Sprintf("its free-page list (page %d) is overwritten: that page says it is page %d with flags %#x", h.freelist, id, flags), nil
	}
	if count == 0xFFFF { // the count is the first element
		count = ne.Uint64(p[pageHeaderSize:]) + 1
	}
	if h.freelist+overflow >= h.pages || count > ((overflow+1)*uint64(h.pageSize)-pageHeaderSize)/8 {
		return h, fmt.Sprintf("its free-page list (page %d) claims %d pages and %d entries, more than the file holds", h.freelist, overflow+1, count), nil
	}
	return h, "", nil
}

// parseMeta decodes a meta page (its page header and meta), if valid.
func parseMeta(p []byte) (header, bool) {
	if len(p) < pageHeaderSize+metaSize {
		return header{}, false
	}
	m := p[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	if ne.Uint32(m) != boltMagic || ne.Uint32(m[4:]) != boltVersion {
		return header{}, false
	}
	sum := fnv.New64a()
	sum.Write(m[:56])
	if sum.Sum64() != ne.Uint64(m[56:]) {
		return header{}, false
	}
	return header{
		pageSize: int64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pages:    ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, true
}
