package cyrusindex

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Partitions reads the partition directories (partition-NAME: DIR) from an imapd.conf.
// Settings that move the index elsewhere (metapartition-NAME, metadir-*) are refused:
// this reader looks for a mailbox's files only in its partition's directory.
func Partitions(imapdConf string) (map[string]string, error) {
	f, err := os.Open(imapdConf)
	if err != nil {
		return nil, fmt.Errorf("cyrusindex: %w", err)
	}
	defer f.Close()
	parts := map[string]string{}
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
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(k, "partition-") && v != "":
			parts[strings.TrimPrefix(k, "partition-")] = v
		case strings.HasPrefix(k, "metapartition-"), strings.HasPrefix(k, "metadir-"):
			return nil, fmt.Errorf("cyrusindex: %s: %s moves mailbox metadata off the partition; not supported", imapdConf, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cyrusindex: read %s: %w", imapdConf, err)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("cyrusindex: %s names no partition (partition-NAME)", imapdConf)
	}
	return parts, nil
}
