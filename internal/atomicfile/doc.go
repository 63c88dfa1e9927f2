// Package atomicfile writes files so that a reader, or the next process after a crash,
// sees the old content or the new, never a torn one.
package atomicfile
