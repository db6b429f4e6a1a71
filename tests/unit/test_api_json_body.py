"""A response body holding a lone surrogate (hostile chain content can carry one) is escaped,
never a failure: the hostile-content suite found /verify answering 500 for such evidence."""

from __future__ import annotations

import json

from pydantic import BaseModel

from api.service import json_body


class Detail(BaseModel):
    detail: str


def test_a_lone_surrogate_is_escaped_and_plain_text_is_untouched() -> None:
    body = json_body(Detail(detail="evidence \ud800 here"))
    assert b"\\ud800" in body
    assert json.loads(body) == {"detail": "evidence \ud800 here"}
    assert json_body(Detail(detail="caf\u00e9")) == '{"detail":"café"}'.encode()
