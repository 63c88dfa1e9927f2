package csync

import (
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
