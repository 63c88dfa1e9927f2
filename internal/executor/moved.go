package executor

// moved counts bodies and bytes uploaded (Executor.Moved), when someone counts.
func (x *Executor) moved(bodies int, bytes int64) {
	if x.Moved != nil {
		x.Moved(bodies, bytes)
	}
}

// movedBytes is a body read that moved n bytes: progress for the stall guard, and bytes
// for the progress records.
func (x *Executor) movedBytes(n int) {
	x.progress()
	x.moved(0, int64(n))
}
