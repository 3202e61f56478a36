package serve

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// session is go-mysql's handler for the handshake only: after it, the
// commands are read and answered by session.command. These methods stand
// in for go-mysql's EmptyHandler, which prints each call ("Received:
// UseDB") to the standard logger, outside binarc's.
var _ server.Handler = (*session)(nil)

// UseDB accepts the database a client names at the handshake: serve has
// none, and a replica names none.
func (s *session) UseDB(string) error { return nil }

func (s *session) HandleQuery(string) (*mysql.Result, error) { return nil, errHandshakeOnly }

func (s *session) HandleFieldList(string, string) ([]*mysql.Field, error) {
	return nil, errHandshakeOnly
}

func (s *session) HandleStmtPrepare(string) (int, int, any, error) {
	return 0, 0, nil, errHandshakeOnly
}

func (s *session) HandleStmtExecute(any, string, []any) (*mysql.Result, error) {
	return nil, errHandshakeOnly
}

func (s *session) HandleStmtClose(any) error { return nil }

func (s *session) HandleOtherCommand(cmd byte, _ []byte) error {
	return mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, fmt.Sprintf("binarc serve: command %d is not supported", cmd))
}

// errHandshakeOnly: go-mysql's dispatch is never used after the handshake.
var errHandshakeOnly = mysql.NewError(mysql.ER_UNKNOWN_ERROR, "binarc serve: command not expected here")
