package csync

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that the decoder is total (never panics, never hangs on finite
// input) and that whatever it accepts re-encodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{capturedUser, capturedFull, capturedAnno, capturedQuota, capturedSeen,
		"NIL", "(a b)", "%(K {3+}\r\nabc)", "%{default 0000000000000000000000000000000000000000 2}\r\nab"} {
		f.Add([]byte(s))
	}
	// Real replies captured from Cyrus (golden_test.go): each first data line.
	if files, _ := filepath.Glob(filepath.Join(goldenDir, "*.reply")); len(files) > 0 {
		for _, fn := range files {
			b, err := os.ReadFile(fn)
			if err != nil {
				f.Fatal(err)
			}
			if rest, ok := bytes.CutPrefix(b, []byte("* ")); ok {
				if i := bytes.LastIndex(rest, []byte("\r\nOK ")); i >= 0 {
					f.Add(rest[:i+2])
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := DefaultLimits
		lim.MaxString, lim.MaxFile, lim.MaxItems = 1<<16, 1<<16, 1<<14
		if v, err := DecodeLimits(data, lim); err == nil {
			checkReencode(t, v)
		}
		if _, v, err := DecodeLine(data); err == nil {
			checkReencode(t, v)
		}
	})
}

func checkReencode(t *testing.T, v Value) {
	enc, err := Marshal(v)
	if err != nil {
		return // e.g. a flag or literal the encoder refuses to send
	}
	back, err := Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Marshal(%v)) = %q: %v", v, enc, err)
	}
	if !back.Equal(v) {
		t.Fatalf("re-encode changed the value:\n %v\n %v", v, back)
	}
}

// FuzzReadResponse checks the reply reader (data lines, status lines, Fatal, BYE) on
// arbitrary server bytes: an error or a result, never a panic or a hang.
func FuzzReadResponse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.reply"))
	for _, fn := range files {
		if b, err := os.ReadFile(fn); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"OK success\r\n", "NO IMAP_MAILBOX_MOVED x\r\n", "* Fatal error: boom\r\n", "BYE\r\n",
		"* X {3}\r\nab", "* MISSING (a b)\r\nOK\r\n", "+ \r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := DefaultLimits
		lim.MaxString, lim.MaxFile, lim.MaxItems, lim.MaxLine = 1<<16, 1<<16, 1<<14, 1<<12
		c := &Conn{br: bufio.NewReader(bytes.NewReader(data)), lim: lim}
		_ = c.readResponse("GET X", func(key string, v Value) error {
			if key == "" {
				t.Fatal("empty key accepted")
			}
			_, _ = ParseMailbox(v)
			_, _ = ParseQuota(v)
			return nil
		})
	})
}
