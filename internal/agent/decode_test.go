package agent

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
)

func TestDecodeRequest(t *testing.T) {
	for _, c := range []struct {
		method, path, query, body string
		code                      int // 0: accepted
	}{
		{"GET", api.PathConfig, "", "", 0},
		{"HEAD", api.PathConfig, "", "", 0},
		{"POST", api.PathConfig, "", "", http.StatusMethodNotAllowed},
		{"GET", api.PathConfig, "x=1", "", http.StatusBadRequest},
		{"GET", api.PathConfig, "", "{}", http.StatusBadRequest},
		{"GET", "/v1/config/", "", "", http.StatusNotFound},
		{"GET", "/v1/../v1/config", "", "", http.StatusNotFound},
		{"GET", "/v1/%2e%2e/config", "", "", http.StatusNotFound},
		{"POST", api.PathLease, "wait=250ms", "", 0},
		{"POST", api.PathLease, "wait=-1s", "", http.StatusBadRequest},
		{"POST", api.PathLease, "wait=1s&wait=2s", "", http.StatusBadRequest},
		{"POST", api.PathLease, "wait=forever", "", http.StatusBadRequest},
		{"POST", api.PathAck, "lease=0123456789abcdef0123456789abcdef", "", 0},
		{"POST", api.PathAck, "lease=0123456789ABCDEF0123456789ABCDEF", "", http.StatusBadRequest},
		{"POST", api.PathAck, "lease=../../etc/passwd", "", http.StatusBadRequest},
		{"POST", api.PathAck, "", "", http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":["alice","john.doe@example.com"],"uniqueids":["7c2f"]}`, 0},
		{"POST", api.PathLookup, "", `{"users":["../etc"]}`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":[""]}`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":["a\nb"]}`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":["a"],"x":1}`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":["a"]} {}`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `[`, http.StatusBadRequest},
		{"POST", api.PathLookup, "", `{"users":["` + strings.Repeat("a", api.MaxNameLen+1) + `"]}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default","owner":"fred","sinceModseq":7,"afterUid":3}`, 0},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"0123abcd-0123-abcd-0123-0123456789ab","partition":"p_2"}`, 0},
		{"GET", api.PathIndex, "", "", http.StatusMethodNotAllowed},
		{"POST", api.PathIndex, "", ``, http.StatusBadRequest},
		{"POST", api.PathIndex, "x=1", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"../../../../etc/x","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwc.","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"-pmt3cku1gcmyunjvah2wwcq","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"short","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"` + strings.Repeat("a", api.MaxUniqueIDLen+1) + `","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"../x"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default","path":"/etc"}`, http.StatusBadRequest},
		{"POST", api.PathIndex, "", `{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default","sinceModseq":-1}`, http.StatusBadRequest},
	} {
		r, err := decodeRequest(c.method, c.path, c.query, []byte(c.body))
		var se *statusError
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%s %s?%s %s: %v, want accepted", c.method, c.path, c.query, c.body, err)
		case c.code != 0 && (!errors.As(err, &se) || se.code != c.code):
			t.Errorf("%s %s?%s %s: %v, want %d", c.method, c.path, c.query, c.body, err, c.code)
		case c.code == 0 && r.path != c.path:
			t.Errorf("%s: decoded path %q", c.path, r.path)
		}
	}
	if r, _ := decodeRequest("POST", api.PathLease, "wait=1h", nil); r.wait != api.MaxWait {
		t.Errorf("wait=1h: %v, want the bound %v", r.wait, api.MaxWait)
	}
	if r, _ := decodeRequest("POST", api.PathLease, "", nil); r.wait != api.DefaultWait {
		t.Errorf("no wait: %v", r.wait)
	}
}

// FuzzDecodeRequest: no request makes the decoder panic, and whatever it accepts is one
// of the API's paths with names that cannot reach a file.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("GET", api.PathConfig, "", []byte(nil))
	f.Add("POST", api.PathLease, "wait=3s", []byte(nil))
	f.Add("POST", api.PathAck, "lease=0123456789abcdef0123456789abcdef", []byte(nil))
	f.Add("POST", api.PathLookup, "", []byte(`{"users":["alice"],"uniqueids":["a1b2"]}`))
	f.Add("POST", api.PathLookup, "", []byte(`{"users":["../../etc/passwd"]}`))
	f.Add("GET", "/v1/%2e%2e/config", "a=%zz", []byte("{"))
	f.Add("POST", api.PathIndex, "", []byte(`{"name":"user.fred","uniqueid":"8pmt3cku1gcmyunjvah2wwcq","partition":"default","owner":"fred","sinceModseq":7}`))
	f.Add("POST", api.PathIndex, "", []byte(`{"name":"user.fred","uniqueid":"../../etc/passwd","partition":"default"}`))
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		r, err := decodeRequest(method, path, query, body)
		if err != nil {
			var se *statusError
			if !errors.As(err, &se) || se.code < 400 || se.code > 499 {
				t.Fatalf("refusal without a 4xx: %v", err)
			}
			return
		}
		if _, ok := routes[r.path]; !ok || r.path != path {
			t.Fatalf("accepted path %q as %q", path, r.path)
		}
		if r.wait < 0 || r.wait > api.MaxWait {
			t.Fatalf("wait %v out of bounds", r.wait)
		}
		if r.path == api.PathAck && len(r.lease) != 32 {
			t.Fatalf("lease id %q", r.lease)
		}
		if r.path == api.PathIndex {
			checkAcceptedIndex(t, r.index)
		}
		if r.lookup != nil {
			for _, n := range append(append([]string{}, r.lookup.Users...), r.lookup.UniqueIDs...) {
				if n == "" || strings.ContainsAny(n, "/\x00\n\r") || len(n) > api.MaxNameLen {
					t.Fatalf("accepted name %q", n)
				}
			}
		}
	})
}

// checkAcceptedIndex: an accepted index request names a uniqueid and a partition that
// can be nothing but one directory name each.
func checkAcceptedIndex(t *testing.T, r *api.IndexRequest) {
	t.Helper()
	if r == nil {
		t.Fatal("index request accepted without a body")
	}
	for _, s := range []string{r.UniqueID, r.Partition} {
		if s == "" || s[0] == '-' || strings.ContainsAny(s, "/\\.\x00 ") || s != filepath.Base(s) {
			t.Fatalf("accepted uniqueid %q, partition %q", r.UniqueID, r.Partition)
		}
	}
	if n := len(r.UniqueID); n < api.MinUniqueIDLen || n > api.MaxUniqueIDLen {
		t.Fatalf("accepted uniqueid %q", r.UniqueID)
	}
}
