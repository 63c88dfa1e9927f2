package main

import (
	"context"
	"crypto/tls"
	"fmt"
)

// masterUsers lists every user of the master: from its mailboxes.db (through its agent,
// --agent, or the file, --master-config), else through its IMAP service (--master-imap), secured exactly as the master's csync
// connection. Audit walks them; seeding fills the replica with them.
type masterUsers struct {
	c    *commonFlags
	imap string
	tls  *tls.Config
}

// masterUsers returns the lister for --master-imap addr ("" when not given); call it
// after the flags were checked.
func (c *commonFlags) masterUsers(imapAddr string) (*masterUsers, error) {
	cfg, err := c.masterTLS.config(imapAddr)
	if err != nil {
		return nil, err
	}
	return &masterUsers{c: c, imap: imapAddr, tls: cfg}, nil
}

// available says whether the master's users can be listed at all.
func (m *masterUsers) available() bool {
	return m.c.agent.url != "" || m.c.masterConfig != "" || m.imap != ""
}

// list returns the master's users.
func (m *masterUsers) list(ctx context.Context) ([]string, error) {
	c := m.c
	if c.agent.client != nil {
		users, err := c.agent.client.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the master's users through the agent: %w", err)
		}
		return users, nil
	}
	if c.masterConfig != "" {
		db, err := c.mailboxesDB()
		if err != nil {
			return nil, fmt.Errorf("listing the master's users from mailboxes.db: %w", err)
		}
		users, err := db.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the master's users from mailboxes.db: %w", err)
		}
		return users, nil
	}
	users, err := listUsersIMAP(ctx, m.imap, c.masterUser, c.masterPassword, m.tls, c.masterTLS.mode == tlsImplicit, c.timeout)
	if err != nil {
		return nil, fmt.Errorf("listing the master's users: %w", err)
	}
	return users, nil
}
