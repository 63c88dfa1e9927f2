package csync

import "testing"

// Values the real Debian 3.6.1 server reported (csync-protocol.md §3.5).
func TestSyncCRCCaptured(t *testing.T) {
	_, v, err := DecodeLine([]byte(capturedFull))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMailbox(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := SyncCRC(m.Records); got != 1201526514 {
		t.Errorf("SyncCRC = %d, want 1201526514", got)
	}
	if got := SyncCRCAnnot(m.Records); got != 2620928207 {
		t.Errorf("SyncCRCAnnot = %d, want 2620928207", got)
	}
	// user.bob: one \Seen record uploaded by hand (§1.5), SYNC_CRC 785313718.
	bob := []Record{{UID: 1, ModSeq: 2, LastUpdated: 1700000000, Flags: []string{`\Seen`}, InternalDate: 1700000000,
		Size: 109, GUID: "5532a9406f7c4bd0ad2a9d0cc6be77f7597d8d5b"}}
	if got := SyncCRC(bob); got != 785313718 {
		t.Errorf("SyncCRC(bob) = %d, want 785313718", got)
	}
}

func TestSyncCRCRules(t *testing.T) {
	base := Record{UID: 1, ModSeq: 2, LastUpdated: 3, InternalDate: 4, GUID: "e344e96396781b255af3df8f60518830d0d9bbc0",
		Annotations: []Annotation{{Entry: thridEntry, Value: "00000000000000ab"}}}
	if SyncCRC(nil) != 0 || SyncCRCAnnot(nil) != annotCRCSeed {
		t.Fatal("empty mailbox CRCs")
	}
	exp := base
	exp.Flags = []string{`\Expunged`, `\Seen`}
	if SyncCRC([]Record{exp}) != 0 || SyncCRCAnnot([]Record{exp}) != annotCRCSeed {
		t.Error("expunged records must not count")
	}
	seen := base
	seen.Flags = []string{`\Seen`}
	seenLower := base
	seenLower.Flags = []string{`\seen`}
	if SyncCRC([]Record{seen}) == SyncCRC([]Record{base}) || SyncCRC([]Record{seen}) != SyncCRC([]Record{seenLower}) {
		t.Error("flag CRC: \\Seen must count, case-insensitively")
	}
	padded := SyncCRCAnnot([]Record{base})
	unpadded := base
	unpadded.Annotations = []Annotation{{Entry: thridEntry, Value: "ab"}}
	if padded != SyncCRCAnnot([]Record{unpadded}) {
		t.Error("thrid must be hashed unpadded")
	}
	// XOR of two records is order-independent.
	two := base
	two.UID = 2
	if SyncCRC([]Record{base, two}) != SyncCRC([]Record{two, base}) {
		t.Error("CRC depends on record order")
	}
}
