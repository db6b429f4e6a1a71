"""What a gateway tells a client whose write may still commit (504): an order's retry with the
same client order id is refused as a duplicate, but a deposit or withdrawal carries no id and a
second copy applies again. Found by review: the 504 told every client retrying was safe, and a
withdrawal retried after one was applied twice."""

from __future__ import annotations

import pytest

from validator.node.gateway import unknown_answer

ORDER = {"type": "order", "account": "a", "order_id": 7}
CANCEL = {"type": "cancel", "account": "a", "order_id": 7}


@pytest.mark.parametrize(
    ("items", "safe"),
    [
        ([ORDER], True),
        ([ORDER, CANCEL], True),
        ([{"type": "withdraw", "account": "a", "amount": 40}], False),
        ([ORDER, {"type": "deposit", "account": "a", "amount": 100}], False),
        (["not an object"], True),
    ],
)
def test_a_504_says_whether_a_retry_is_safe(items: list[object], safe: bool) -> None:
    answer = unknown_answer(items, "no quorum")
    assert answer["outcome"] == "unknown" and answer["retry_safe"] is safe
    assert "no quorum" in answer["error"]
    if safe:
        assert "Retry with the same client order id" in answer["error"]
    else:
        assert "read the account from a node (GET /accounts/{id})" in answer["error"]
