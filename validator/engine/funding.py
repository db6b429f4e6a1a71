"""Account funding: deposits credit cash, withdrawals debit what is neither locked nor reserved."""

from __future__ import annotations

from validator.engine.messages import Deposit, Withdraw
from validator.engine.results import ACCEPTED, REJECTED, RejectReason, Result
from validator.engine.state import State


def deposit(state: State, msg: Deposit) -> Result:
    """Credit cash, opening the account on its first deposit."""
    if msg.amount <= 0:
        return REJECTED[RejectReason.BAD_AMOUNT]
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        account = state.open_account(msg.account)
    account.cash += msg.amount
    return ACCEPTED


def withdraw(state: State, msg: Withdraw) -> Result:
    """Debit cash that is neither locked as collateral nor reserved by resting buys."""
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return REJECTED[RejectReason.UNKNOWN_ACCOUNT]
    if msg.amount <= 0:
        return REJECTED[RejectReason.BAD_AMOUNT]
    if msg.amount > account.cash - account.required:
        return REJECTED[RejectReason.INSUFFICIENT_FUNDS]
    account.cash -= msg.amount
    return ACCEPTED
