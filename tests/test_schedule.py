import pytest

from dynhp_tf import PruningSchedule


def test_cubic_schedule_reaches_the_target_at_end_epoch_and_front_loads_pruning():
    s = PruningSchedule(start_epoch=1, end_epoch=4)
    progress = [s.progress(e, epochs=8) for e in range(8)]
    assert progress[0] is None and progress[5:] == [None, None, None]
    assert progress[4] == 1.0
    steps = [b - a for a, b in zip([0.0] + progress[1:4], progress[1:5])]
    assert steps == sorted(steps, reverse=True)  # cubic: large cuts first, small near the end


def test_frequency_skips_epochs_but_always_prunes_at_the_end():
    s = PruningSchedule(start_epoch=0, end_epoch=5, frequency=2, curve="linear")
    assert [s.progress(e, epochs=6) for e in range(6)] == pytest.approx([1 / 6, None, 3 / 6, None, 5 / 6, 1.0])


def test_default_end_leaves_the_last_40_percent_for_fine_tuning():
    assert PruningSchedule().end(epochs=10) == 5
    with pytest.raises(ValueError, match="^end_epoch:"):
        PruningSchedule(end_epoch=9).check(epochs=5)
