package csync

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestEncodeStringForms(t *testing.T) {
	long := strings.Repeat("a", 1023)
	tests := []struct {
		name, in, want string
	}{
		{"atom", "user.fred.Sent", "user.fred.Sent"},
		{"atom specials allowed", "a[b]c.d!e^f&g-h/i", "a[b]c.d!e^f&g-h/i"},
		{"empty", "", `""`},
		{"NIL word", "NIL", `"NIL"`},
		{"nil lower", "nil", `"nil"`},
		{"space", "My Folder", `"My Folder"`},
		{"tab acl", "fred\tlrswipkxtecdan\t", "\"fred\tlrswipkxtecdan\t\""},
		{"star", "a*b", `"a*b"`},
		{"brace", "a{b", `"a{b"`},
		{"paren", "a(b", `"a(b"`},
		{"1023 atom", long, long},
		{"1024 literal", long + "a", "{1024+}\r\n" + long + "a"},
		{"quote", `a"b`, "{3+}\r\na\"b"},
		{"backslash", `a\b`, "{3+}\r\na\\b"},
		{"percent", "a%b", "{3+}\r\na%b"},
		{"crlf", "ab\r\ncd", "{6+}\r\nab\r\ncd"},
		{"8bit", "é", "{2+}\r\né"},
		{"nul", "a\x00b", "{3+}\r\na\x00b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(Str(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Marshal(%q) = %q, want %q", tc.in, got, tc.want)
			}
			back, err := Decode(got)
			if err != nil {
				t.Fatalf("Decode(%q): %v", got, err)
			}
			if back.Kind != KindString || back.S != tc.in {
				t.Fatalf("round trip gave %#v", back)
			}
			if !bytes.Contains(got, []byte("{")) || !strings.Contains(tc.want, "+}") {
				return
			}
			if bytes.Contains(got, []byte("}\r\n")) && !bytes.Contains(got, []byte("+}\r\n")) {
				t.Fatalf("sent a {N} literal: %q", got)
			}
		})
	}
}

func TestEncodeLiteralLimit(t *testing.T) {
	if _, err := Marshal(Str(strings.Repeat("\x01", MaxSendLiteral))); err != nil {
		t.Fatalf("literal of %d bytes: %v", MaxSendLiteral, err)
	}
	_, err := Marshal(Str(strings.Repeat("\x01", MaxSendLiteral+1)))
	if !errors.Is(err, ErrEncode) {
		t.Fatalf("128 KiB literal: err = %v, want ErrEncode", err)
	}
	// File literals are not subject to the limit.
	big := bytes.Repeat([]byte("x"), 300_000)
	if _, err := Marshal(FileValue("default", strings.Repeat("ab", 20), big)); err != nil {
		t.Fatalf("300 KB file literal: %v", err)
	}
}

func TestEncodeComposite(t *testing.T) {
	v := KV(
		F("UNIQUEID", Str("b0b0b0b0b0b0b0b0b0b0b0b0")),
		F("ACL", Str("bob\tlrswipkxtecdan\t")),
		F("OPTIONS", Str("")),
		F("RECORD", List(KV(F("UID", Num(1)), F("FLAGS", List(Flag(`\Seen`), Str("$Label1"))), F("X", Nil)))),
		F("EMPTY", List()),
	)
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "%(UNIQUEID b0b0b0b0b0b0b0b0b0b0b0b0 ACL \"bob\tlrswipkxtecdan\t\" OPTIONS \"\" RECORD (%(UID 1 FLAGS (\\Seen $Label1) X NIL)) EMPTY ())"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for _, bad := range []Value{Flag("Seen"), Flag(`\`), KV(F("BAD KEY", Nil)), KV(F("", Nil)),
		{Kind: KindFile, File: &File{Partition: "p", GUID: "nothex", Data: nil}},
		{Kind: KindFile, File: &File{Partition: "p", GUID: strings.Repeat("a", 40), Size: 3, Data: []byte("ab")}},
		{Kind: KindFile}, {Kind: Kind(99)}} {
		if _, err := Marshal(bad); !errors.Is(err, ErrEncode) {
			t.Errorf("Marshal(%v): err = %v, want ErrEncode", bad, err)
		}
	}
}

// Lines captured from the real Debian 3.6.1 server (csync-protocol.md §1.5).
const (
	capturedUser  = "MAILBOX %(UNIQUEID 5qb988epx9doxrsagmoc2f7b MBOXNAME user.fred SYNC_CRC 1491633786 SYNC_CRC_ANNOT 3893577454 LAST_UID 3 HIGHESTMODSEQ 5 RECENTUID 3 RECENTTIME 1795919375 LAST_APPENDDATE 1795919375 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY 1795919370 PARTITION default ACL \"fred\tlrswipkxtecdan\t\" OPTIONS P QUOTAROOT user.fred CREATEDMODSEQ 1 FOLDERMODSEQ 1)\r\n"
	capturedFull  = "MAILBOX %(UNIQUEID e2j6r8umxrvqf8xnjdp76s3t MBOXNAME user.fred.Sent SYNC_CRC 1201526514 SYNC_CRC_ANNOT 2620928207 LAST_UID 1 HIGHESTMODSEQ 2 RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE 1795919408 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY 1795919370 PARTITION default ACL \"fred\tlrswipkxtecdan\t\" OPTIONS P QUOTAROOT user.fred CREATEDMODSEQ 1 FOLDERMODSEQ 1 RECORD (%(UID 1 MODSEQ 2 LAST_UPDATED 1795919408 FLAGS () INTERNALDATE 1795919408 SIZE 138 GUID e344e96396781b255af3df8f60518830d0d9bbc0 ANNOTATIONS (%(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID \"\" MODSEQ 0 VALUE 1795919408) %(ENTRY /vendor/cmu/cyrus-imapd/createdmodseq USERID \"\" MODSEQ 0 VALUE 2)))))\r\n"
	capturedAnno  = "ANNOTATION %(MBOXNAME user.fred ENTRY /comment USERID \"\" VALUE {6}\r\nab\r\ncd)\r\n"
	capturedQuota = "QUOTA %(ROOT user.fred LIMIT 100000 STORAGE 100000 MODSEQ 11)\r\n"
	capturedSeen  = "SEEN %(UNIQUEID b0b0b0b0b0b0b0b0b0b0b0b0 LASTREAD 1700000100 LASTUID 1 LASTCHANGE 1700000100 SEENUIDS 1)\r\n"
)

func TestDecodeCaptured(t *testing.T) {
	key, v, err := DecodeLine([]byte(capturedUser))
	if err != nil || key != "MAILBOX" {
		t.Fatalf("DecodeLine: %q %v", key, err)
	}
	m, err := ParseMailbox(v)
	if err != nil {
		t.Fatal(err)
	}
	if m.UniqueID != "5qb988epx9doxrsagmoc2f7b" || m.Name != "user.fred" || m.SyncCRC != 1491633786 ||
		m.SyncCRCAnnot != 3893577454 || m.LastUID != 3 || m.HighestModSeq != 5 || m.UIDValidity != 1795919370 ||
		m.ACL != "fred\tlrswipkxtecdan\t" || m.Options != "P" || m.QuotaRoot != "user.fred" || m.HasRecords {
		t.Fatalf("parsed %+v", m)
	}

	_, v, err = DecodeLine([]byte(capturedFull))
	if err != nil {
		t.Fatal(err)
	}
	m, err = ParseMailbox(v)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasRecords || len(m.Records) != 1 {
		t.Fatalf("records: %+v", m.Records)
	}
	r := m.Records[0]
	if r.UID != 1 || r.ModSeq != 2 || r.Size != 138 || r.GUID != "e344e96396781b255af3df8f60518830d0d9bbc0" ||
		len(r.Flags) != 0 || len(r.Annotations) != 2 || r.Annotations[0].Value != "1795919408" {
		t.Fatalf("record %+v", r)
	}
	// Re-encoding the typed mailbox reproduces the captured bytes exactly.
	enc, err := Marshal(m.Value())
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(strings.TrimPrefix(capturedFull, "MAILBOX "), "\r\n"); string(enc) != want {
		t.Fatalf("re-encoded\n%s\nwant\n%s", enc, want)
	}

	_, v, err = DecodeLine([]byte(capturedAnno))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseMailboxAnnotation(v)
	if err != nil || a.Value != "ab\r\ncd" || a.Entry != "/comment" || a.UserID != "" {
		t.Fatalf("annotation %+v %v", a, err)
	}
	if val, _ := v.Get("VALUE"); val.Form != FormLiteral {
		t.Fatalf("VALUE form %v", val.Form)
	}

	_, v, err = DecodeLine([]byte(capturedQuota))
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuota(v)
	if err != nil || q.Root != "user.fred" || q.Resources["LIMIT"] != 100000 || q.Resources["STORAGE"] != 100000 || q.ModSeq != 11 {
		t.Fatalf("quota %+v %v", q, err)
	}
	if enc, _ := Marshal(q.Value()); string(enc) != "%(ROOT user.fred LIMIT 100000 STORAGE 100000 MODSEQ 11)" {
		t.Fatalf("quota re-encoded %s", enc)
	}

	_, v, err = DecodeLine([]byte(capturedSeen))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSeen(v)
	if err != nil || s.UniqueID != "b0b0b0b0b0b0b0b0b0b0b0b0" || s.LastUID != 1 || s.SeenUIDs != "1" {
		t.Fatalf("seen %+v %v", s, err)
	}
}

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{"NIL", Nil},
		{"nil", Str("nil")},
		{`"NIL"`, Str("NIL")},
		{`"a\"b\\c"`, Str(`a"b\c`)},
		{"{3}\r\nabc", Str("abc")},
		{"{3+}\r\nabc", Str("abc")},
		{"{0}\r\n", Str("")},
		{"{2}\nab", Str("ab")},
		{`\Seen`, Flag(`\Seen`)},
		{"()", List()},
		{"(a b)", List(Str("a"), Str("b"))},
		{"%()", KV()},
		{"(%(A (1 2)) NIL \\Draft)", List(KV(F("A", List(Num(1), Num(2)))), Nil, Flag(`\Draft`))},
		{"%{default " + strings.Repeat("0", 40) + " 3}\r\nabc", FileValue("default", strings.Repeat("0", 40), []byte("abc"))},
		{"atom\r\n", Str("atom")},
	}
	for _, tc := range tests {
		got, err := Decode([]byte(tc.in))
		if err != nil {
			t.Errorf("Decode(%q): %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("Decode(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	deep := strings.Repeat("(", 100) + strings.Repeat(")", 100)
	bad := []string{
		"", " ", ")", "(", "(a", "(a b", "(a)b", "(a\tb)", "%", "%x", "%(", "%(KEY", "%(KEY ", "%(KEY)",
		"%(KEY value", "%( KEY v)", "%({X} v)", `"abc`, "\"a\r\nb\"", `"a\`, "{", "{3", "{3}", "{3}\r\nab",
		"{x}\r\n", "{3}x", "{99999999999}\r\n", "{2}\rab", "(a  b)", `\`, `\ `, "a b", "(a)\r\nx",
		"%{default " + strings.Repeat("0", 40) + " 5}\r\nabc", "%{default nothex 1}\r\na",
		"%{default " + strings.Repeat("0", 40) + " 99999999999}\r\n", "%{ " + strings.Repeat("0", 40) + " 1}\r\na",
		"%{default " + strings.Repeat("0", 40) + "}\r\n", deep,
		"{5}\r\nab", // EOF mid-literal
	}
	for _, in := range bad {
		if v, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = %v, want error", in, v)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q): %v does not wrap ErrMalformed", in, err)
		}
	}
	for _, in := range []string{"", "MAILBOX", "MAILBOX %()", "MAILBOX %()\r\nx", "(x) y\r\n", "K  v\r\n"} {
		if _, _, err := DecodeLine([]byte(in)); err == nil {
			t.Errorf("DecodeLine(%q) succeeded", in)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	lim := DefaultLimits
	lim.MaxString = 10
	lim.MaxFile = 4
	lim.MaxItems = 5
	for _, in := range []string{
		"{11}\r\n01234567890", strings.Repeat("a", 11), `"` + strings.Repeat("a", 11) + `"`,
		"%{p " + strings.Repeat("0", 40) + " 5}\r\nabcde", "(1 2 3 4 5 6)",
	} {
		if _, err := DecodeLimits([]byte(in), lim); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeLimits(%.20q): err = %v, want ErrMalformed", in, err)
		}
	}
}

func TestAccessors(t *testing.T) {
	v, err := Decode([]byte("%(N 42 BIG 18446744073709551615 NEG -1 G E344E96396781B255AF3DF8F60518830D0D9BBC0 L (a) S \"x y\")"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) Value {
		x, ok := v.Get(k)
		if !ok {
			t.Fatalf("missing %s", k)
		}
		return x
	}
	if n, err := get("N").Num(); err != nil || n != 42 {
		t.Errorf("Num = %d %v", n, err)
	}
	if _, err := get("BIG").Num(); !errors.Is(err, ErrType) {
		t.Errorf("Num of 2^64-1: %v", err)
	}
	if n, err := get("BIG").Num64(); err != nil || n != 18446744073709551615 {
		t.Errorf("Num64 = %d %v", n, err)
	}
	if _, err := get("NEG").Num64(); !errors.Is(err, ErrType) {
		t.Errorf("Num64(-1): %v", err)
	}
	if g, err := get("G").GUID(); err != nil || g != "e344e96396781b255af3df8f60518830d0d9bbc0" {
		t.Errorf("GUID = %q %v", g, err)
	}
	if _, err := get("N").GUID(); !errors.Is(err, ErrType) {
		t.Errorf("GUID(42): %v", err)
	}
	if l, err := get("L").List(); err != nil || len(l) != 1 {
		t.Errorf("List = %v %v", l, err)
	}
	if _, err := get("S").List(); !errors.Is(err, ErrType) {
		t.Errorf("List of string: %v", err)
	}
	if s, err := get("S").Str(); err != nil || s != "x y" {
		t.Errorf("Str = %q %v", s, err)
	}
	if _, err := Nil.Str(); !errors.Is(err, ErrType) {
		t.Errorf("Str(NIL): %v", err)
	}
	if _, ok := v.Get("n"); ok {
		t.Errorf("Get is case-insensitive")
	}
}

// randValue builds a random value of bounded depth, biased towards awkward strings.
func randValue(r *rand.Rand, depth int) Value {
	k := r.IntN(7)
	if depth > 4 {
		k = r.IntN(3)
	}
	switch k {
	case 0:
		return Nil
	case 1, 2:
		return Str(randString(r))
	case 3:
		return Flag(`\` + []string{"Seen", "Deleted", "Answered", "Flagged", "Draft", "Expunged"}[r.IntN(6)])
	case 4:
		n := r.IntN(5)
		items := make([]Value, n)
		for i := range items {
			items[i] = randValue(r, depth+1)
		}
		return List(items...)
	case 5:
		n := r.IntN(5)
		fields := make([]Field, n)
		for i := range fields {
			fields[i] = F([]string{"UID", "MBOXNAME", "X-Y", "a.b", "RECORD"}[r.IntN(5)], randValue(r, depth+1))
		}
		return KV(fields...)
	default:
		data := []byte(randString(r))
		guid := make([]byte, 40)
		for i := range guid {
			guid[i] = "0123456789abcdef"[r.IntN(16)]
		}
		return FileValue([]string{"default", "p2", "my part"}[r.IntN(3)], string(guid), data)
	}
}

func randString(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return ""
	case 1:
		return []string{"NIL", "nil", "user.fred.Sent", "a b", "fred\tlrs\t"}[r.IntN(5)]
	case 2:
		return strings.Repeat("x", 1020+r.IntN(8)) // around the atom/quoted limit
	}
	n := r.IntN(40)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		v := randValue(r, 0)
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", v, err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Marshal(%v)) = %q: %v", v, enc, err)
		}
		if !got.Equal(v) {
			t.Fatalf("round trip:\n in  %v\n out %v\n wire %q", v, got, enc)
		}
		if bytes.Contains(enc, []byte("}\r\n")) {
			// every ordinary literal we send is {N+}
			for _, m := range literalHeaders(enc) {
				if !strings.HasSuffix(m, "+}") && !strings.HasPrefix(m, "%{") {
					t.Fatalf("non-synchronising literal %q in %q", m, enc)
				}
			}
		}
	}
}

// literalHeaders finds "{...}" headers followed by CRLF (a rough scan for the test).
func literalHeaders(b []byte) []string {
	var out []string
	for i := 0; i < len(b); i++ {
		if b[i] != '{' {
			continue
		}
		j := bytes.Index(b[i:], []byte("}\r\n"))
		if j < 0 || j > 24 {
			continue
		}
		start := i
		if i > 0 && b[i-1] == '%' {
			start = i - 1
		}
		out = append(out, string(b[start:i+j+1]))
	}
	return out
}
