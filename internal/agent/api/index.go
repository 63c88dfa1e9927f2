package api

// PathIndex reads one mailbox's index on the master (POST, body IndexRequest).
const PathIndex = "/v1/mailboxes/index"

// IndexContentType is the media type of an index answer: one JSON IndexHead line,
// then exactly IndexHead.Records lines of JSON IndexRecord, so that a large folder is
// written and read a record at a time.
const IndexContentType = "application/x-cyrusrepl-index"

// Limits of an index request.
const (
	MinUniqueIDLen  = 16 // Cyrus 3.6 writes 36 (a UUID); older ones 16 hex digits and more
	MaxUniqueIDLen  = 64
	MaxPartitionLen = 64
)

// IndexRequest is the body of POST /v1/mailboxes/index: the folder (as the master's
// GET MAILBOXES names it) and which records are wanted — those with a modseq above
// SinceModSeq or a UID above AfterUID (both 0: every record).
type IndexRequest struct {
	Name        string `json:"name"`
	UniqueID    string `json:"uniqueid"`
	Partition   string `json:"partition"`
	Owner       string `json:"owner,omitempty"` // the userid annotation keys' owner token stands for
	SinceModSeq uint64 `json:"sinceModseq,omitempty"`
	AfterUID    uint32 `json:"afterUid,omitempty"`
}

// IndexHead is the first line of an index answer: cyrus.index's header, cyrus.header,
// how many records the agent looked at and how many lines follow.
type IndexHead struct {
	Header  IndexHeader   `json:"header"`
	Mailbox MailboxHeader `json:"mailbox"`
	Scanned int           `json:"scanned"`
	Records int           `json:"records"`
}

// IndexHeader is cyrus.index's header, field for field.
type IndexHeader struct {
	Generation     uint32 `json:"generation"`
	Format         uint32 `json:"format"`
	MinorVersion   uint32 `json:"minorVersion"`
	StartOffset    uint32 `json:"startOffset"`
	RecordSize     uint32 `json:"recordSize"`
	NumRecords     uint32 `json:"numRecords"`
	LastAppendDate uint32 `json:"lastAppendDate"`
	LastUID        uint32 `json:"lastUid"`
	QuotaUsed      uint64 `json:"quotaUsed"`
	POP3LastLogin  uint32 `json:"pop3LastLogin"`
	UIDValidity    uint32 `json:"uidValidity"`
	Options        uint32 `json:"options"`
	HighestModSeq  uint64 `json:"highestModseq"`
	DeletedModSeq  uint64 `json:"deletedModseq"`
	Exists         uint32 `json:"exists"`
	FirstExpunged  uint32 `json:"firstExpunged"`
	LastRepackTime uint32 `json:"lastRepackTime"`
	HeaderFileCRC  uint32 `json:"headerFileCrc"`
	SyncCRC        uint32 `json:"syncCrc"`
	RecentUID      uint32 `json:"recentUid"`
	RecentTime     uint32 `json:"recentTime"`
	POP3ShowAfter  uint32 `json:"pop3ShowAfter"`
	SyncCRCAnnot   uint32 `json:"syncCrcAnnot"`
	Unseen         uint32 `json:"unseen"`
	CreatedModSeq  uint64 `json:"createdModseq"`
	ChangesEpoch   uint32 `json:"changesEpoch"`
}

// MailboxHeader is cyrus.header.
type MailboxHeader struct {
	Type      string   `json:"type"`
	Name      string   `json:"name"`
	UniqueID  string   `json:"uniqueid"`
	QuotaRoot string   `json:"quotaroot"`
	ACL       string   `json:"acl"`
	UserFlags []string `json:"userFlags"` // by slot, "" for a free slot
	CRC       uint32   `json:"crc"`
}

// IndexRecord is one index record, with short keys: a large folder's answer is mostly
// these.
type IndexRecord struct {
	UID           uint32            `json:"u"`
	InternalDate  uint32            `json:"id"`
	SentDate      uint32            `json:"sd"`
	Size          uint32            `json:"sz"`
	HeaderSize    uint32            `json:"hs"`
	GMTime        uint32            `json:"gt"`
	LastUpdated   uint32            `json:"lu"`
	SystemFlags   uint32            `json:"sf"`
	InternalFlags uint32            `json:"if"`
	UserFlags     [4]uint32         `json:"uf"`
	SaveDate      uint32            `json:"sv"`
	GUID          string            `json:"g"` // 40 hex digits
	ModSeq        uint64            `json:"ms"`
	ThrID         uint64            `json:"th"`
	CreatedModSeq uint64            `json:"cm"`
	Flags         []string          `json:"f,omitempty"`
	Annotations   []IndexAnnotation `json:"a,omitempty"`
}

// IndexAnnotation is one per-message annotation.
type IndexAnnotation struct {
	Entry  string `json:"e"`
	UserID string `json:"u,omitempty"`
	ModSeq uint64 `json:"m"`
	Value  string `json:"v"`
}

// IndexError is the body of an index read's refusal: Reason names why the index was
// not trusted, as the reader says it ("version", "checksum", "format", "lock",
// "changed", "missing", "io"), so that the client returns the same kind of error.
type IndexError struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}
