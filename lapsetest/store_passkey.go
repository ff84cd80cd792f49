package lapsetest

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.PasskeyStore = (*Store)(nil)

// clonePasskey returns p with slices of its own.
func clonePasskey(p lapse.Passkey) *lapse.Passkey {
	p.CredentialID, p.UserHandle, p.PublicKey = slices.Clone(p.CredentialID), slices.Clone(p.UserHandle), slices.Clone(p.PublicKey)
	p.Transports, p.AAGUID = slices.Clone(p.Transports), slices.Clone(p.AAGUID)
	return &p
}

// passkey returns the index of subject's passkey id, or -1.
func (st *Store) passkey(subject, id string) int {
	return slices.IndexFunc(st.passkeys[subject], func(p lapse.Passkey) bool { return p.ID == id })
}

// Passkeys implements [lapse.PasskeyStore].
func (st *Store) Passkeys(_ context.Context, subject string) ([]*lapse.Passkey, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	out := []*lapse.Passkey{}
	for _, p := range st.passkeys[subject] {
		out = append(out, clonePasskey(p))
	}
	slices.SortFunc(out, func(a, b *lapse.Passkey) int { // oldest first
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// AddPasskey implements [lapse.PasskeyStore].
func (st *Store) AddPasskey(_ context.Context, p *lapse.Passkey) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if slices.ContainsFunc(st.passkeys[p.Subject], func(q lapse.Passkey) bool { return bytes.Equal(q.CredentialID, p.CredentialID) }) {
		return &lapse.Error{Code: lapse.CodeConflict, Message: "this passkey is already registered"}
	}
	st.passkeys[p.Subject] = append(st.passkeys[p.Subject], *clonePasskey(*p))
	return nil
}

// UsePasskey implements [lapse.PasskeyStore].
func (st *Store) UsePasskey(_ context.Context, subject, id string, count uint32, backupState bool, now time.Time) (bool, error) {
	if err := st.lock(); err != nil {
		return false, err
	}
	defer st.mu.Unlock()
	i := st.passkey(subject, id)
	if i < 0 {
		return false, factorNotFound("the subject has no such passkey")
	}
	p := &st.passkeys[subject][i]
	if count <= p.SignCount && (count != 0 || p.SignCount != 0) {
		return false, nil // the counter went back
	}
	p.SignCount, p.BackupState, p.LastUsedAt = count, backupState, now
	return true, nil
}

// RenamePasskey implements [lapse.PasskeyStore].
func (st *Store) RenamePasskey(_ context.Context, subject, id, name string) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	i := st.passkey(subject, id)
	if i < 0 {
		return factorNotFound("the subject has no such passkey")
	}
	st.passkeys[subject][i].Name = name
	return nil
}

// RemovePasskey implements [lapse.PasskeyStore].
func (st *Store) RemovePasskey(_ context.Context, subject, id string) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	i := st.passkey(subject, id)
	if i < 0 {
		return factorNotFound("the subject has no such passkey")
	}
	st.passkeys[subject] = slices.Delete(st.passkeys[subject], i, i+1)
	return nil
}

// PutChallenge implements [lapse.PasskeyStore]; it drops the challenges
// that expired an hour or more before c expires.
func (st *Store) PutChallenge(_ context.Context, c *lapse.Challenge) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	for h, old := range st.challenges {
		if !old.ExpiresAt.After(c.ExpiresAt.Add(-time.Hour)) {
			delete(st.challenges, h)
		}
	}
	kept := *c
	kept.Data = slices.Clone(c.Data)
	st.challenges[c.Hash] = kept
	return nil
}

// TakeChallenge implements [lapse.PasskeyStore].
func (st *Store) TakeChallenge(_ context.Context, subject string, h lapse.TokenHash, now time.Time) (*lapse.Challenge, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	c, ok := st.challenges[h]
	if !ok || c.Subject != subject {
		return nil, nil
	}
	delete(st.challenges, h)
	if !now.Before(c.ExpiresAt) {
		return nil, nil
	}
	return &c, nil
}
