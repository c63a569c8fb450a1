package plan

import "fmt"

// DDLOp is the kind of schema change a schema change plan makes.
type DDLOp int

const (
	// DDLAlterTable is ALTER TABLE: columns, defaults, NOT NULL,
	// constraints, storage options.
	DDLAlterTable DDLOp = iota
	// DDLCreateIndex is CREATE [UNIQUE] INDEX [CONCURRENTLY].
	DDLCreateIndex
	// DDLDropIndex is DROP INDEX [CONCURRENTLY].
	DDLDropIndex
	// DDLDropTable is DROP TABLE: shards, placements and metadata go too.
	DDLDropTable
	// DDLTruncate is TRUNCATE: the shards only (the template has no rows).
	DDLTruncate
	// DDLRename is ALTER TABLE / INDEX ... RENAME.
	DDLRename
	// DDLComment is COMMENT ON TABLE / COLUMN.
	DDLComment
	// DDLAnalyze is ANALYZE [(options)] table [(columns)]: statistics,
	// gathered on every finalized placement and on the template; it
	// changes no schema.
	DDLAnalyze
	// DDLVacuum is VACUUM [(options)] table [(columns)]: run on every
	// finalized placement and on the template, outside a transaction.
	DDLVacuum
)

func (o DDLOp) String() string {
	switch o {
	case DDLAlterTable:
		return "ALTER TABLE"
	case DDLCreateIndex:
		return "CREATE INDEX"
	case DDLDropIndex:
		return "DROP INDEX"
	case DDLDropTable:
		return "DROP TABLE"
	case DDLTruncate:
		return "TRUNCATE"
	case DDLRename:
		return "RENAME"
	case DDLComment:
		return "COMMENT"
	case DDLAnalyze:
		return "ANALYZE"
	case DDLVacuum:
		return "VACUUM"
	}
	return fmt.Sprintf("DDLOp(%d)", int(o))
}

// DefaultEval is one added column's default, evaluated once.
type DefaultEval struct {
	Column string
	// SQL is the SELECT of the default's value as text, cast to the
	// column's type.
	SQL string
}

// ShardRef names the shard of one of a schema change's tables a shard
// statement is written for: its id and its table's name on the workers.
type ShardRef struct {
	ID    int64
	Table string
}
