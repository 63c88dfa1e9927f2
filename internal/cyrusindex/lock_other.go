//go:build !unix

package cyrusindex

import (
	"fmt"
	"os"
	"time"
)

func lockShared(*os.File, time.Duration) error {
	return fmt.Errorf("%w: fcntl locks need a Unix system", ErrLocked)
}

func unlock(*os.File) {}

func samePath(*os.File, string) (bool, error) { return false, nil }
