package lapse

import (
	"testing"
	"time"
)

// remeasure makes the next wallAt measure the wall clock's offset again.
func remeasure() { wallChecked.Store(int64(sinceEpoch() - wallRecheck)) }

func TestWallAtTellsTheSystemTime(t *testing.T) {
	remeasure()
	wallAt(sinceEpoch())           // measured now
	const slack = time.Millisecond // a slewed clock's drift since the measure is far less
	before := time.Now()
	got := wallAt(sinceEpoch()) // derived from the offset
	after := time.Now()
	if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
		t.Errorf("wallAt = %v, want between %v and %v", got, before, after)
	}
	if got.Location() != time.UTC {
		t.Errorf("wallAt's location = %v, want UTC", got.Location())
	}
}

func TestWallAtMeasuresTheOffsetAgainWhenItIsOld(t *testing.T) {
	t.Cleanup(remeasure)
	// A measure just taken that says the wall clock is an hour ahead, as
	// after a step of the system's clock: it is believed until wallRecheck.
	wallOffset.Store(int64(time.Hour))
	mono := sinceEpoch()
	wallChecked.Store(int64(mono))
	if got, want := wallAt(mono), time.Now().Add(time.Hour); got.Before(want.Add(-time.Minute)) || got.After(want.Add(time.Minute)) {
		t.Errorf("wallAt with a fresh offset of an hour = %v, want about %v", got, want)
	}
	// Once the measure is wallRecheck old, the clock is read again.
	wallChecked.Store(int64(mono - wallRecheck))
	if got, want := wallAt(sinceEpoch()), time.Now(); got.Before(want.Add(-time.Minute)) || got.After(want.Add(time.Minute)) {
		t.Errorf("wallAt with an old offset = %v, want about %v (measured again)", got, want)
	}
	if off := time.Duration(wallOffset.Load()); off > time.Minute || off < -time.Minute {
		t.Errorf("offset after the measure = %v, want about 0", off)
	}
}
