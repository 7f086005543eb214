"""What a session's end means when an exception cut it short (no hosts needed)."""

from mgmt.remote.orchestration.ending import judge_error


def test_a_connection_error_without_a_message_is_named_by_its_class():
    # "connection lost: " with nothing after it was printed for one (an exception is true).
    assert judge_error("b", ConnectionResetError(), None, None, None) == (
        "failed",
        "connection lost: ConnectionResetError",
    )
    assert judge_error("b", EOFError("pipe closed"), None, None, None) == (
        "failed",
        "connection lost: pipe closed",
    )


def test_a_host_dropped_after_the_stops_grace_failed_and_a_lost_one_says_lost():
    dropped = "lost: no answer within 3 s of the stop"
    assert judge_error("b", EOFError(), None, dropped, "stopped") == ("failed", dropped)
    lost = "lost: no answer to SSH keepalives for 4 s"
    assert judge_error("b", EOFError(), lost, dropped, "stopped") == ("failed", lost)
    assert judge_error("b", EOFError(), None, None, "converged") == ("converged", "")
