"""The queue's bookkeeping (server/admission.py), on a clock the test moves."""

from __future__ import annotations

from contextlib import ExitStack

from digitrec.server.admission import FLOOR, Admission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(admission: Admission, clock: Clock, pictures: int, seconds: float) -> None:
    """One request of `pictures`, answered `seconds` after it came in."""
    with admission.admitted(), admission.reading(pictures):
        clock.now += seconds


def test_max_queue_is_a_hard_bound():
    admission = Admission(max_queue=FLOOR + 2, max_wait_s=0)
    with ExitStack() as inside:
        for _ in range(FLOOR + 2):
            assert not admission.full()
            inside.enter_context(admission.admitted())
        assert admission.full() and admission.inside == FLOOR + 2
    assert admission.inside == 0 and not admission.full()


def test_the_rate_is_measured_over_busy_time_only():
    clock = Clock()
    admission = Admission(max_queue=100, max_wait_s=0.25, clock=clock)
    assert admission.rate is None
    for _ in range(10):
        answer(admission, clock, 1, 0.1)  # 10 pictures a second while busy...
        clock.now += 5.0  # ...and long idle gaps, which must not count
    assert admission.rate is not None and abs(admission.rate - 10.0) < 1e-9


def test_a_request_that_would_wait_too_long_is_refused_above_the_floor():
    clock = Clock()
    admission = Admission(max_queue=100, max_wait_s=0.25, clock=clock)
    for _ in range(10):
        answer(admission, clock, 1, 0.1)  # rate: 10 pictures/s, so 0.25 s is 2.5 pictures ahead
    with ExitStack() as inside:
        for _ in range(FLOOR):  # the floor is admitted whatever the wait
            assert not admission.full()
            inside.enter_context(admission.admitted())
        assert admission.ahead == FLOOR and admission.full()
    with admission.admitted(), admission.reading(64):  # one batch of 64 inside: 6.4 s of work
        assert admission.ahead == 64 and not admission.full()  # under the floor: still admitted
        with ExitStack() as inside:
            for _ in range(FLOOR - 1):
                inside.enter_context(admission.admitted())
            assert admission.full()


def test_no_estimate_without_a_wait_bound():
    clock = Clock()
    admission = Admission(max_queue=100, max_wait_s=0, clock=clock)
    for _ in range(10):
        answer(admission, clock, 1, 0.1)
    with ExitStack() as inside:
        for _ in range(50):
            inside.enter_context(admission.admitted())
        assert not admission.full()


def test_a_refused_picture_is_not_counted_as_answered():
    clock = Clock()
    admission = Admission(max_queue=100, max_wait_s=0.25, clock=clock)
    try:
        with admission.admitted(), admission.reading(5):
            clock.now += 1.0
            raise ValueError("a broken picture")
    except ValueError:
        pass
    assert admission.rate is None and admission.pictures == admission.working == admission.inside == 0
