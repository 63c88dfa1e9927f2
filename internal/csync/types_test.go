package csync

import (
	"strings"
	"testing"
)

func TestMailboxValueShapes(t *testing.T) {
	tomb := &Mailbox{UniqueID: "u1", Name: "user.bob.Gone", Type: "ed", HighestModSeq: 7, CreatedModSeq: 3,
		LastUID: 9, ACL: "ignored", Records: []Record{{UID: 1}}}
	enc, err := Marshal(tomb.Value())
	if err != nil {
		t.Fatal(err)
	}
	if string(enc) != "%(UNIQUEID u1 MBOXNAME user.bob.Gone MBOXTYPE ed HIGHESTMODSEQ 7 CREATEDMODSEQ 3)" {
		t.Fatalf("tombstone: %s", enc)
	}
	m := &Mailbox{UniqueID: "u2", Name: "user.bob", LastUID: 1, HighestModSeq: 2, UIDValidity: 5, Partition: "default",
		ACL: "bob\tlrs\t", Since: &Since{ModSeq: 1, CRC: 0, CRCAnnot: 12345678},
		Records: []Record{{UID: 1, ModSeq: 2, LastUpdated: 3, Flags: []string{`\Seen`, "$Label1"}, InternalDate: 4, Size: 5,
			GUID: strings.Repeat("ab", 20)}}}
	enc, err = Marshal(m.Value())
	if err != nil {
		t.Fatal(err)
	}
	want := "%(UNIQUEID u2 MBOXNAME user.bob SYNC_CRC 0 SYNC_CRC_ANNOT 0 LAST_UID 1 HIGHESTMODSEQ 2 RECENTUID 0 RECENTTIME 0 " +
		"LAST_APPENDDATE 0 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY 5 PARTITION default ACL \"bob\tlrs\t\" OPTIONS \"\" " +
		"SINCE_MODSEQ 1 SINCE_CRC 0 SINCE_CRC_ANNOT 12345678 RECORD (%(UID 1 MODSEQ 2 LAST_UPDATED 3 FLAGS (\\Seen $Label1) " +
		"INTERNALDATE 4 SIZE 5 GUID " + strings.Repeat("ab", 20) + ")))"
	if string(enc) != want {
		t.Fatalf("mailbox:\n%s\nwant\n%s", enc, want)
	}
	back, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ParseMailbox(back)
	if err != nil || pm.Since == nil || pm.Since.CRCAnnot != 12345678 || len(pm.Records) != 1 || pm.Records[0].Flags[1] != "$Label1" {
		t.Fatalf("parsed back: %+v %v", pm, err)
	}
	if _, err := ParseMailbox(KV(F("MBOXNAME", Str("x")))); err == nil {
		t.Fatal("MAILBOX without UNIQUEID parsed")
	}
	if _, err := ParseMailbox(KV(F("UNIQUEID", Str("u")), F("MBOXNAME", Str("x")), F("RECORD", List(KV(F("UID", Num(1))))))); err == nil {
		t.Fatal("RECORD without GUID parsed")
	}
}
