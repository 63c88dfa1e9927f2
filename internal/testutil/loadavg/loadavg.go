// Package loadavg reads the machine's load average, which benchmarks print next to
// their figures (the machine is shared, so a figure means little without it).
package loadavg

import (
	"os"
	"strings"
)

// String returns the 1, 5 and 15 minute load averages from /proc/loadavg ("?" when
// they cannot be read).
func String() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
