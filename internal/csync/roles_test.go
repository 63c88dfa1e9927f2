package csync

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The read-only guarantee: MasterConn's method set has no APPLY, and its only field is
// the unexported reader (so the *Conn cannot be reached from outside the package).
func TestMasterConnIsReadOnly(t *testing.T) {
	mt := reflect.TypeOf(&MasterConn{})
	for i := 0; i < mt.NumMethod(); i++ {
		name := mt.Method(i).Name
		if strings.HasPrefix(name, "Apply") || strings.Contains(name, "Raw") && name != "GetRaw" {
			t.Errorf("MasterConn exposes %s", name)
		}
	}
	st := mt.Elem()
	for i := 0; i < st.NumField(); i++ {
		if f := st.Field(i); f.IsExported() {
			t.Errorf("MasterConn has exported field %s", f.Name)
		}
	}
	rt := reflect.TypeOf(&ReplicaConn{})
	for _, want := range []string{"ApplyMailbox", "ApplyMessage", "ApplyReserve", "GetUser", "Fetch"} {
		if _, ok := rt.MethodByName(want); !ok {
			t.Errorf("ReplicaConn lacks %s", want)
		}
	}
	if _, ok := mt.MethodByName("GetFullMailbox"); !ok {
		t.Error("MasterConn lacks GetFullMailbox")
	}
}

// No APPLY can be smuggled through a MasterConn's GET: keys must be atoms and values
// are encoded as atoms, quoted strings or literals, never raw text.
func TestGetCannotInjectCommands(t *testing.T) {
	c := &Conn{}
	for _, key := range []string{"USER x\r\nAPPLY UNUSER bob", "USER\nAPPLY", "", "A B"} {
		if _, err := c.encodeCommand("GET", key, Str("y")); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	line, err := c.encodeCommand("GET", "USER", Str("bob\r\nAPPLY UNUSER bob"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "GET USER {21+}\r\nbob\r\nAPPLY UNUSER bob\r\n"; string(line) != want {
		t.Fatalf("got %q want %q", line, want)
	}
}

func TestDialMasterRefusesApply(t *testing.T) {
	_, err := DialMaster(context.Background(), "127.0.0.1:1", Options{SieveMailbox: true})
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("err = %v", err)
	}
}
