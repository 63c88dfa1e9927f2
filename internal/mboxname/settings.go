package mboxname

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MasterSettings are the master's imapd.conf settings that shape names and deletes.
// Internal names on the wire do not depend on the namespace settings; they are read so
// that the replicator can say what it runs against and so that the IMAP user listing and
// the deleted namespace follow the master, not a guess.
type MasterSettings struct {
	ConfigDirectory  string // configdirectory (mailboxes.db lives there)
	DeletedPrefix    string // deletedprefix: first component of delayed-deleted names
	DeleteMode       string // delete_mode: "delayed" or "immediate"
	UnixHierarchySep bool   // unixhierarchysep: '/' separates levels on IMAP, a dot is a character
	AltNamespace     bool   // altnamespace: a user's folders sit beside INBOX on IMAP
	VirtDomains      string // virtdomains: "off", "userid" or "on"
}

// DefaultMasterSettings are Cyrus 3.6's compiled-in defaults.
var DefaultMasterSettings = MasterSettings{
	DeletedPrefix: "DELETED", DeleteMode: "delayed",
	UnixHierarchySep: true, AltNamespace: true, VirtDomains: "off",
}

// ReadMasterSettings reads an imapd.conf: unset options keep Cyrus's defaults.
// configdirectory is required.
func ReadMasterSettings(imapdConf string) (MasterSettings, error) {
	s := DefaultMasterSettings
	f, err := os.Open(imapdConf)
	if err != nil {
		return s, fmt.Errorf("open imapd.conf: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if err := s.set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return s, fmt.Errorf("imapd.conf %s: %w", imapdConf, err)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read imapd.conf: %w", err)
	}
	if s.ConfigDirectory == "" {
		return s, errors.New("imapd.conf has no configdirectory")
	}
	return s, nil
}

func (s *MasterSettings) set(key, val string) error {
	var err error
	switch key {
	case "configdirectory":
		s.ConfigDirectory = val
	case "deletedprefix":
		err = checkDeletedPrefix(val)
		s.DeletedPrefix = val
	case "delete_mode":
		if val != "delayed" && val != "immediate" {
			return fmt.Errorf("delete_mode %q: want delayed or immediate", val)
		}
		s.DeleteMode = val
	case "unixhierarchysep":
		s.UnixHierarchySep, err = cyrusBool(key, val)
	case "altnamespace":
		s.AltNamespace, err = cyrusBool(key, val)
	case "virtdomains":
		switch strings.ToLower(val) {
		case "userid", "on", "off":
			s.VirtDomains = strings.ToLower(val)
		default:
			if b, berr := cyrusBool(key, val); berr == nil && !b {
				s.VirtDomains = "off"
			} else {
				return fmt.Errorf("virtdomains %q: want off, userid or on", val)
			}
		}
	}
	return err
}

// cyrusBool parses a Cyrus switch (yes/no, on/off, true/false, 1/0).
func cyrusBool(key, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "on", "true", "t", "y":
		return true, nil
	case "0", "no", "off", "false", "f", "n":
		return false, nil
	}
	return false, fmt.Errorf("%s %q: not a switch", key, v)
}

// Separator is the hierarchy separator IMAP clients see.
func (s MasterSettings) Separator() string {
	if s.UnixHierarchySep {
		return "/"
	}
	return "."
}
