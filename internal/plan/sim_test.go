package plan

import (
	"fmt"
	"sort"
)

// sim is a simulated replica: names → folders, with the preconditions a real 3.6
// sync_server enforces (plus the uniqueid re-check the executor does before a delete
// or rename).
type sim struct {
	byName  map[string]Folder
	deleted map[string]bool // uniqueids deleted
}

func newSim(fs []Folder) *sim {
	s := &sim{byName: map[string]Folder{}, deleted: map[string]bool{}}
	for _, f := range fs {
		s.byName[f.Name] = f
	}
	return s
}

func (s *sim) holder(uid string) (string, bool) {
	for n, f := range s.byName {
		if f.UniqueID == uid {
			return n, true
		}
	}
	return "", false
}

func (s *sim) apply(a Action) error {
	switch a.Op {
	case OpDelete:
		f, ok := s.byName[a.Name]
		if !ok || f.UniqueID != a.UniqueID {
			return fmt.Errorf("delete %s: replica holds %q, plan expected %s", a.Name, f.UniqueID, a.UniqueID)
		}
		delete(s.byName, a.Name)
		s.deleted[a.UniqueID] = true
	case OpRename:
		f, ok := s.byName[a.Name]
		if !ok || f.UniqueID != a.UniqueID {
			return fmt.Errorf("rename %s: replica holds %q, plan expected %s", a.Name, f.UniqueID, a.UniqueID)
		}
		if g, busy := s.byName[a.NewName]; busy {
			return fmt.Errorf("rename %s -> %s: target held by %s", a.Name, a.NewName, g.UniqueID)
		}
		delete(s.byName, a.Name)
		f.Name = a.NewName
		s.byName[a.NewName] = f
	case OpCreate:
		if g, busy := s.byName[a.Name]; busy {
			return fmt.Errorf("create %s: held by %s", a.Name, g.UniqueID)
		}
		if n, ok := s.holder(a.UniqueID); ok {
			return fmt.Errorf("create %s: uniqueid %s live at %s (IMAP_MAILBOX_MOVED)", a.Name, a.UniqueID, n)
		}
		s.byName[a.Name] = *a.Master
	case OpMoveAside:
		f, ok := s.byName[a.Name]
		if !ok || f.UniqueID != a.UniqueID {
			return fmt.Errorf("move-aside %s: replica holds %q, plan expected %s", a.Name, f.UniqueID, a.UniqueID)
		}
		if g, busy := s.byName[a.NewName]; busy {
			return fmt.Errorf("move-aside %s: rescue name %s held by %s", a.Name, a.NewName, g.UniqueID)
		}
		// A rescue folder with a new uniqueid, then the master's copy at the name.
		s.byName[a.NewName] = Folder{UniqueID: "rescue-" + f.UniqueID, Name: a.NewName, UIDValidity: 1, LastUID: f.LastUID, HighestModSeq: uint64(f.LastUID)}
		m := *a.Master
		m.Name = a.Name
		s.byName[a.Name] = m
	case OpUpdate:
		f, ok := s.byName[a.Name]
		if !ok || f.UniqueID != a.UniqueID {
			return fmt.Errorf("update %s: replica holds %q, plan expected %s", a.Name, f.UniqueID, a.UniqueID)
		}
		m := *a.Master
		m.Name = a.Name
		s.byName[a.Name] = m
	}
	return nil
}

func (s *sim) run(p Plan) error {
	for _, a := range p.Actions {
		if err := s.apply(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *sim) folders() []Folder {
	out := make([]Folder, 0, len(s.byName))
	for _, f := range s.byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
