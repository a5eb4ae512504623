from hypothesis import given
from hypothesis import strategies as st

from skylan.lab import Netem, naming
from skylan.lab.impair import Impairment


def test_netns_names_round_trip() -> None:
    lab_id = naming.new_lab_id()
    assert naming.lab_id_of(naming.netns_name(lab_id, "a-nat")) == lab_id


@given(st.text(max_size=40))
def test_foreign_names_are_never_ours(name: str) -> None:
    if not name.startswith(naming.PREFIX):
        assert naming.lab_id_of(name) is None


def test_netem_arguments() -> None:
    assert Netem().args() == []
    assert Netem(loss_pct=1).args() == ["--loss", "1"]
    assert Netem(delay_ms=5, seed=3).args() == ["--delay", "5", "--seed", "3"]


def test_impairment_loss_rate_is_close_to_requested() -> None:
    imp = Impairment(loss_pct=10, seed=1)
    dropped = sum(imp.due(0.0) is None for _ in range(10_000))
    assert 800 < dropped < 1200


def test_impairment_delay_jitter_and_reorder() -> None:
    imp = Impairment(delay_s=0.05, jitter_s=0.01, reorder_pct=25, seed=2)
    dues = [imp.due(1.0) for _ in range(4000)]
    assert all(d is not None and 1.0 <= d <= 1.061 for d in dues)
    immediate = sum(d == 1.0 for d in dues)
    assert 800 < immediate < 1200  # the reordered quarter skips the delay
    delayed = [d for d in dues if d is not None and d != 1.0]
    assert min(delayed) >= 1.039 and max(delayed) <= 1.061
