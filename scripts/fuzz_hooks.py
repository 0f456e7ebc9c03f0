"""Schemathesis hooks of scripts/fuzz.sh: every error answer must be in the contract's shape (a
JSON object with `detail`: a string, or the validation list of {loc, msg, type}), and every
request is counted (written to $FUZZ_COUNT_FILE at exit)."""
import atexit
import json
import os

import schemathesis

_count = {"requests": 0, "by_status": {}}


@schemathesis.hook
def after_call(context, case, response):
    _count["requests"] += 1
    key = str(response.status_code)
    _count["by_status"][key] = _count["by_status"].get(key, 0) + 1


def _write():
    path = os.environ.get("FUZZ_COUNT_FILE")
    if path:
        with open(path, "w") as f:
            json.dump(_count, f)


atexit.register(_write)


def _invalid_http(case):
    """Whether a generated header cannot be sent as HTTP (control characters in a field value,
    RFC 9110 5.5): the server's HTTP parser refuses such a request before any route sees it."""
    for value in (case.headers or {}).values():
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in str(value)):
            return True
    return False


@schemathesis.check
def error_in_contract_shape(response, case):
    if response.status_code < 400:
        return None
    if response.status_code == 400 and not response.content and _invalid_http(case):
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body: {response.text[:200]!r}")
    assert isinstance(body, dict) and "detail" in body, f"error without detail: {body!r}"
    detail = body["detail"]
    if isinstance(detail, list):
        for issue in detail:
            assert isinstance(issue, dict) and {"loc", "msg", "type"} <= set(issue), f"validation issue not in the contract's shape: {issue!r}"
    else:
        assert isinstance(detail, str), f"detail is neither a message nor a list: {detail!r}"
    return None
