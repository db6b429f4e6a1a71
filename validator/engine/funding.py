"""Account funding: deposits credit cash, withdrawals debit what is neither locked nor reserved.

A transfer with a non-zero ``request_id`` is applied at most once: the id is recorded among the
account's used client ids (the ranges its order ids are kept in), and a second copy is rejected.
"""

from __future__ import annotations

from validator.engine.accounts import MAX_ID_RANGES, Account
from validator.engine.messages import Deposit, Withdraw
from validator.engine.results import ACCEPTED, REJECTED, RejectReason, Result
from validator.engine.state import State


def _id_refused(account: Account, request_id: int) -> Result | None:
    """Why ``request_id`` cannot be recorded for the account (None: it can)."""
    if account.id_used(request_id):
        return REJECTED[RejectReason.DUPLICATE_REQUEST_ID]
    if len(account.id_ends) >= MAX_ID_RANGES and account.opens_id_range(request_id):
        return REJECTED[RejectReason.TOO_MANY_ORDER_ID_GAPS]
    return None


def deposit(state: State, msg: Deposit) -> Result:
    """Credit cash, opening the account on its first deposit."""
    if msg.amount <= 0:
        return REJECTED[RejectReason.BAD_AMOUNT]
    request_id = msg.request_id
    account = state.accounts_by_id.get(msg.account)
    if account is not None and request_id:
        refused = _id_refused(account, request_id)
        if refused is not None:
            return refused
    if account is None:
        account = state.open_account(msg.account)
    if request_id:
        account.use_id(request_id)
    account.cash += msg.amount
    account.changed = True
    return ACCEPTED


def withdraw(state: State, msg: Withdraw) -> Result:
    """Debit cash that is neither locked as collateral nor reserved by resting buys."""
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return REJECTED[RejectReason.UNKNOWN_ACCOUNT]
    if msg.amount <= 0:
        return REJECTED[RejectReason.BAD_AMOUNT]
    request_id = msg.request_id
    if request_id:
        refused = _id_refused(account, request_id)
        if refused is not None:
            return refused
    if msg.amount > account.cash - account.required:
        return REJECTED[RejectReason.INSUFFICIENT_FUNDS]
    if request_id:
        account.use_id(request_id)
    account.cash -= msg.amount
    account.changed = True
    return ACCEPTED
