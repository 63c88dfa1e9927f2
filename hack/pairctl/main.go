// Command pairctl drives a Cyrus pair started by hack/cyrus-pair.sh from the shell, for
// the demo and for people trying the operator by hand:
//
//	pairctl -pair DIR [-on master|replica|replica2] create-user USER
//	pairctl -pair DIR create-folder USER FOLDER
//	pairctl -pair DIR deliver USER [COUNT]         (LMTP to INBOX)
//	pairctl -pair DIR rename USER FROM TO
//	pairctl -pair DIR delete USER FOLDER
//	pairctl -pair DIR list USER                    (folders with message counts)
//
// Folder names are relative to the user: "Sent", "Work.Old".
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

func main() {
	dir := flag.String("pair", os.Getenv("CYRUSREPL_PAIR_DIR"), "directory of the pair (hack/cyrus-pair.sh start DIR)")
	on := flag.String("on", "master", "instance: master, replica or replica2")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pairctl -pair DIR [-on INSTANCE] create-user|create-folder|deliver|rename|delete|list ARGS...")
	}
	flag.Parse()
	if err := run(*dir, *on, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "pairctl: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, on string, args []string) error {
	if dir == "" || len(args) < 2 {
		flag.Usage()
		return fmt.Errorf("need -pair DIR, a command and a user")
	}
	p, err := cyruspair.Load(dir)
	if err != nil {
		return err
	}
	inst := map[string]*cyruspair.Instance{"master": p.Master, "replica": p.Replica, "replica2": p.Replica2}[on]
	if inst == nil {
		return fmt.Errorf("no instance %q in %s", on, dir)
	}
	cmd, user, rest := args[0], args[1], args[2:]
	need := func(n int) error {
		if len(rest) < n {
			return fmt.Errorf("%s needs %d more argument(s)", cmd, n)
		}
		return nil
	}
	do := func(asUser string, format string, a ...any) ([]string, error) {
		authz := asUser
		if asUser == p.AdminUser {
			authz = ""
		}
		c, err := cyruspair.DialIMAP(inst.IMAPAddr, authz, p.AdminUser, p.AdminPassword)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.Cmd(format, a...)
	}
	switch cmd {
	case "create-user":
		_, err = do(p.AdminUser, "CREATE %s", cyruspair.Quote("user."+user))
	case "create-folder":
		if err = need(1); err == nil {
			_, err = do(user, "CREATE %s", cyruspair.Quote(cyruspair.FolderName(rest[0])))
		}
	case "rename":
		if err = need(2); err == nil {
			_, err = do(user, "RENAME %s %s", cyruspair.Quote(cyruspair.FolderName(rest[0])), cyruspair.Quote(cyruspair.FolderName(rest[1])))
		}
	case "delete":
		if err = need(1); err == nil {
			_, err = do(user, "DELETE %s", cyruspair.Quote(cyruspair.FolderName(rest[0])))
		}
	case "deliver":
		n := 1
		if len(rest) > 0 {
			if n, err = strconv.Atoi(rest[0]); err != nil || n < 1 {
				return fmt.Errorf("deliver: bad count %q", rest[0])
			}
		}
		for k := 0; k < n && err == nil; k++ {
			err = cyruspair.DeliverLMTP(inst.LMTPAddr, []string{user},
				cyruspair.Message(fmt.Sprintf("demo message %d", k+1), "Hello from the cyrusrepl demo.\n"))
		}
		if err == nil {
			fmt.Printf("delivered %d message(s) to %s on %s\n", n, user, on)
		}
	case "list":
		var lines []string
		if lines, err = do(user, `LIST "" "*"`); err != nil {
			return err
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "LIST ") {
				continue
			}
			name := cyruspair.ListName(l)
			st, err := do(user, "STATUS %s (MESSAGES)", cyruspair.Quote(name))
			count := "?"
			if err == nil && len(st) > 0 {
				f := strings.Fields(strings.Trim(st[0][strings.LastIndexByte(st[0], '('):], "()"))
				if len(f) == 2 {
					count = f[1]
				}
			}
			fmt.Printf("%-30s %s messages\n", name, count)
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return err
}
