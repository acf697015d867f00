"""A lane holds at most half of a worker process's threads (at least one), and gives a
thread back when its block ends, however it ends."""

from __future__ import annotations

import pytest

from workers.lanes import Lanes


@pytest.mark.parametrize(("threads", "share"), [(1, 1), (2, 1), (3, 1), (8, 4), (9, 4)])
def test_a_lane_holds_at_most_half_of_the_threads(threads: int, share: int) -> None:
    lanes = Lanes()
    lanes.share_of(threads)
    held = []
    for _ in range(threads):
        cm = lanes.hold("api:openai")
        held.append((cm, cm.__enter__()))
    assert [taken for _, taken in held].count(True) == share
    with lanes.hold("api:replicate") as other:
        assert other, "another provider's lane is its own"
    for cm, _ in reversed(held):
        cm.__exit__(None, None, None)
    with lanes.hold("api:openai") as again:
        assert again


def test_a_thread_is_given_back_when_its_block_raises() -> None:
    lanes = Lanes()
    lanes.share_of(2)
    with pytest.raises(TimeoutError), lanes.hold("api:openai") as taken:
        assert taken
        raise TimeoutError
    with lanes.hold("api:openai") as again:
        assert again


def test_without_a_worker_nothing_is_bounded() -> None:
    lanes = Lanes()
    with lanes.hold("x") as a, lanes.hold("x") as b:
        assert a and b
