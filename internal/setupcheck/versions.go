package setupcheck

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Version is a Cyrus release as its banners name it, e.g. 3.6.1 from
// "3.6.1-Debian-3.6.1-4+deb12u5".
type Version struct {
	Major, Minor, Patch int
	Full                string // the word as the banner wrote it
}

func (v Version) String() string { return v.Full }

// cyrusVersion finds the version word after "Cyrus" in a banner: the csync greeting
// ("replica.example Cyrus sync server 3.6.1-Debian-…") and the IMAP one
// ("[CAPABILITY …] host Cyrus IMAP 3.6.1-… server ready") both name it.
var cyrusVersion = regexp.MustCompile(`\bCyrus\b[^\d]*?\b(\d+)\.(\d+)(?:\.(\d+))?([^\s]*)`)

// ParseBanner returns the Cyrus version a banner names; ok is false when it names none
// (a server with serverinfo: off or min hides it, or it is not Cyrus).
func ParseBanner(greeting string) (v Version, ok bool) {
	m := cyrusVersion.FindStringSubmatch(greeting)
	if m == nil {
		return Version{}, false
	}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	v.Full = m[1] + "." + m[2]
	if m[3] != "" {
		v.Full += "." + m[3]
	}
	v.Full += m[4]
	return v, true
}

// Versions compares the Cyrus versions the master's and the replica's banners name. A
// difference beyond the patch level (3.6 against 3.8) is a warning: Cyrus supports
// replication between different releases only for the length of an upgrade.
func Versions(masterBanner, replicaBanner string) report.Check {
	mv, mok := ParseBanner(masterBanner)
	rv, rok := ParseBanner(replicaBanner)
	check := report.Check{Name: report.CheckVersions}
	switch {
	case !mok || !rok:
		check.Status = report.CheckUnknown
		check.Message = fmt.Sprintf("the Cyrus version is not in the banner of the %s (serverinfo off?): master %q, replica %q", unnamed(mok, rok), masterBanner, replicaBanner)
	case mv.Major != rv.Major || mv.Minor != rv.Minor:
		check.Status, check.Reason = report.CheckWarning, report.ReasonVersionSkew
		check.Message = fmt.Sprintf("the master runs Cyrus %s and the replica Cyrus %s: different releases are supported only for the length of an upgrade", mv, rv)
	default:
		check.Status = report.CheckOK
		check.Message = fmt.Sprintf("master Cyrus %s, replica Cyrus %s", mv, rv)
	}
	return check
}

func unnamed(masterOK, replicaOK bool) string {
	switch {
	case !masterOK && !replicaOK:
		return "master and the replica"
	case !masterOK:
		return "master"
	}
	return "replica"
}
