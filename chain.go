package lapse

import (
	"bytes"
	"context"
	"fmt"
)

// ChainReport is the result of walking an audit log's hash chain.
type ChainReport struct {
	// Records is how many records were checked.
	Records int64
	// Head is the Seq and hash of the last record: keep them outside lapse
	// (a ticket, a log shipper) to detect a truncated tail later.
	HeadSeq  int64
	HeadHash []byte
	// BrokenAt is the Seq of the first record that was altered, removed
	// or reordered, 0 if the chain is intact; Problem says what is wrong.
	BrokenAt int64
	Problem  string
}

// OK reports whether the chain is intact.
func (r ChainReport) OK() bool { return r.BrokenAt == 0 }

// VerifyChain walks log from its first record and reports the first one
// whose content no longer matches its hash (altered), whose Seq skips a
// number (removed), or whose link to the previous hash is broken
// (removed or reordered). If expectHeadSeq is positive, it also checks
// that the record with that Seq still has expectHeadHash, which catches
// a tail cut off after the head was noted.
func VerifyChain(ctx context.Context, log AuditLog, expectHeadSeq int64, expectHeadHash []byte) (ChainReport, error) {
	var (
		rep  ChainReport
		prev = []byte{}
		seq  int64
	)
	for {
		recs, err := log.ChainRecords(ctx, seq, 1000)
		if err != nil {
			return rep, err
		}
		for _, r := range recs {
			rep.Records++
			switch {
			case r.Seq != seq+1:
				return broken(rep, seq+1, fmt.Sprintf("records %d to %d are missing", seq+1, r.Seq-1)), nil
			case !bytes.Equal(r.PrevHash, prev):
				return broken(rep, r.Seq, "its link to the previous record is broken (a record before it was removed, altered or reordered)"), nil
			case !bytes.Equal(r.ChainHash(r.PrevHash), r.Hash):
				return broken(rep, r.Seq, "its content does not match its hash (the record was altered)"), nil
			}
			if r.Seq == expectHeadSeq && !bytes.Equal(r.Hash, expectHeadHash) {
				return broken(rep, r.Seq, "its hash differs from the head noted earlier"), nil
			}
			prev, seq = r.Hash, r.Seq
			rep.HeadSeq, rep.HeadHash = r.Seq, r.Hash
		}
		if len(recs) < 1000 {
			break
		}
	}
	if expectHeadSeq > rep.HeadSeq {
		return broken(rep, rep.HeadSeq+1, fmt.Sprintf("the log ends at record %d but record %d was noted earlier (the tail was cut off)", rep.HeadSeq, expectHeadSeq)), nil
	}
	return rep, nil
}

func broken(rep ChainReport, at int64, problem string) ChainReport {
	rep.BrokenAt, rep.Problem = at, fmt.Sprintf("record %d: %s", at, problem)
	return rep
}
