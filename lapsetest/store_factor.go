package lapsetest

import (
	"context"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.FactorStore = (*Store)(nil)

// attempt is a recorded [lapse.Attempt] and how it ended.
type attempt struct {
	lapse.Attempt
	outcome lapse.AttemptOutcome
}

func factorNotFound(msg string) error {
	return &lapse.Error{Code: lapse.CodeFactorNotFound, Message: msg}
}

// Factors implements [lapse.FactorStore].
func (st *Store) Factors(_ context.Context, subject string) (*lapse.FactorState, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	state := &lapse.FactorState{RecoveryCodes: len(st.recovery[subject]), Passkeys: len(st.passkeys[subject])}
	if f, ok := st.factors[subject]; ok {
		f.Secret = slices.Clone(f.Secret)
		state.TOTP = &f
	}
	return state, nil
}

// PutTOTP implements [lapse.FactorStore].
func (st *Store) PutTOTP(_ context.Context, f *lapse.TOTPFactor) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if old, ok := st.factors[f.Subject]; ok && old.Confirmed() {
		return &lapse.Error{Code: lapse.CodeConflict, Message: "the subject already has a TOTP factor; remove it first"}
	}
	st.factors[f.Subject] = lapse.TOTPFactor{ID: f.ID, Subject: f.Subject, Secret: slices.Clone(f.Secret), CreatedAt: f.CreatedAt}
	return nil
}

// ConfirmTOTP implements [lapse.FactorStore].
func (st *Store) ConfirmTOTP(_ context.Context, subject, id string, step int64, recovery []lapse.TokenHash, now time.Time) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	f, ok := st.factors[subject]
	switch {
	case !ok || f.ID != id:
		return factorNotFound("the enrolment was replaced or removed; enrol again")
	case f.Confirmed():
		return &lapse.Error{Code: lapse.CodeConflict, Message: "the TOTP factor is already confirmed"}
	}
	f.ConfirmedAt, f.LastStep, f.LastUsedAt = now, step, now
	st.factors[subject] = f
	st.recovery[subject] = slices.Clone(recovery)
	return nil
}

// UseTOTPStep implements [lapse.FactorStore].
func (st *Store) UseTOTPStep(_ context.Context, subject, id string, step int64, now time.Time) (bool, error) {
	if err := st.lock(); err != nil {
		return false, err
	}
	defer st.mu.Unlock()
	f, ok := st.factors[subject]
	switch {
	case !ok || f.ID != id || !f.Confirmed():
		return false, factorNotFound("the subject has no confirmed TOTP factor")
	case step <= f.LastStep:
		return false, nil
	}
	f.LastStep, f.LastUsedAt = step, now
	st.factors[subject] = f
	return true, nil
}

// UseRecoveryCode implements [lapse.FactorStore]. A used code is
// forgotten: nothing reads it again.
func (st *Store) UseRecoveryCode(_ context.Context, subject string, h lapse.TokenHash, _ time.Time) (bool, error) {
	if err := st.lock(); err != nil {
		return false, err
	}
	defer st.mu.Unlock()
	codes := st.recovery[subject]
	i := slices.Index(codes, h)
	if i < 0 {
		return false, nil
	}
	st.recovery[subject] = slices.Delete(codes, i, i+1)
	return true, nil
}

// RemoveTOTP implements [lapse.FactorStore].
func (st *Store) RemoveTOTP(_ context.Context, subject string) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if _, ok := st.factors[subject]; !ok {
		return factorNotFound("the subject has no TOTP factor")
	}
	delete(st.factors, subject)
	delete(st.recovery, subject)
	return nil
}

// BeginAttempt implements [lapse.FactorStore].
func (st *Store) BeginAttempt(_ context.Context, a lapse.Attempt, l lapse.AttemptLimit) (int64, time.Time, error) {
	if err := st.lock(); err != nil {
		return 0, time.Time{}, err
	}
	defer st.mu.Unlock()
	var retry time.Time
	for _, c := range []struct {
		limit int
		same  func(*attempt) bool
	}{
		{l.PerSubject, func(x *attempt) bool { return x.Subject == a.Subject }},
		{l.PerSession, func(x *attempt) bool { return x.SessionID == a.SessionID }},
	} {
		if at := st.freedAt(c.same, a.Now.Add(-l.Window), c.limit); !at.IsZero() && at.Add(l.Window).After(retry) {
			retry = at.Add(l.Window)
		}
	}
	if !retry.IsZero() {
		return 0, retry, nil
	}
	st.attempts = append(st.attempts, attempt{Attempt: a, outcome: lapse.AttemptPending})
	return int64(len(st.attempts)), time.Time{}, nil
}

// freedAt returns, when the attempts same selects that were not accepted
// and came after since reach limit, the time of the one whose leaving
// the window brings them under it; the zero time otherwise, and for a
// limit of 0.
func (st *Store) freedAt(same func(*attempt) bool, since time.Time, limit int) time.Time {
	var times []time.Time
	for i := range st.attempts {
		if x := &st.attempts[i]; same(x) && x.outcome != lapse.AttemptAccepted && x.Now.After(since) {
			times = append(times, x.Now)
		}
	}
	if limit <= 0 || len(times) < limit {
		return time.Time{}
	}
	slices.SortFunc(times, time.Time.Compare)
	return times[len(times)-limit]
}

// FinishAttempt implements [lapse.FactorStore].
func (st *Store) FinishAttempt(_ context.Context, id int64, outcome lapse.AttemptOutcome) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if id >= 1 && id <= int64(len(st.attempts)) {
		st.attempts[id-1].outcome = outcome
	}
	return nil
}
