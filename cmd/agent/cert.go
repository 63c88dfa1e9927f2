package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// keyPair is the server certificate, loaded again when either file's size or
// modification time changes (a renewed certificate needs no restart).
type keyPair struct {
	cert, key string

	mu    sync.Mutex
	stamp [2]fileStamp
	pair  *tls.Certificate
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, err1 := stampOf(k.cert)
	ks, err2 := stampOf(k.key)
	if (err1 != nil || err2 != nil) && k.pair != nil {
		return k.pair, nil // keep serving the last good pair while the files are swapped
	}
	if k.pair != nil && [2]fileStamp{cs, ks} == k.stamp {
		return k.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	k.pair, k.stamp = &pair, [2]fileStamp{cs, ks}
	return k.pair, nil
}
