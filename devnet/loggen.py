"""Deterministic generator of realistic input logs, for the replay tool, tests and benchmark.

Seeded ``random.Random`` only: the same seed and profile give the same log on
every machine. (Randomness lives here, never in the engine.)

The trading flow follows the spirit of exchange-core's benchmark: many series,
each with a mid price that drifts; mostly passive limit orders a few ticks
from the mid, cancels and cancel-replaces of live orders, and some IOC orders
that cross the touch. A shadow engine applies every generated input, so
cancels and replaces target orders that are really resting, and each series'
book is held near a target depth. The ``replay`` profile adds the rest of a
venue's life: deposits and withdrawals, a small share of bad input, and
expiries that are priced, expired, settled and replaced by new listings.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from validator.engine import Engine
from validator.engine.codec import encode_message
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    Expire,
    ListSeries,
    Message,
    NewOrder,
    SettlementPrice,
    Withdraw,
)
from validator.engine.primitives import (
    AccountId,
    Cash,
    Expiry,
    OptionType,
    OrderId,
    OrderKind,
    Price,
    Quantity,
    SeriesId,
    Side,
    Underlying,
)


@dataclass(frozen=True)
class Profile:
    """Shape of a generated log."""

    underlyings: tuple[tuple[str, int], ...] = (("BTC", 60_000), ("ETH", 3_000))
    """Underlying name and starting spot price, in cash units."""
    expiries: int = 2
    """Expiries listed at a time per underlying."""
    strikes: int = 5
    """Strikes per expiry; each strike is listed as a call and a put."""
    accounts: int = 40
    funds: int = 10**12
    """Cash each account deposits at the start."""
    target_depth: int = 30
    """Resting orders per series the flow aims to keep."""
    lifecycle: bool = True
    """Add deposits, withdrawals, bad input, and expiries with settlement."""
    expiry_every: int = 4_000
    """With ``lifecycle``: inputs between two expiries."""


REPLAY: Final = Profile()
"""Small venue, whole life cycle: for the replay tool and tests."""

BENCHMARK: Final = Profile(
    underlyings=(("BTC", 60_000), ("ETH", 3_000), ("BNB", 600), ("SOL", 150)),
    expiries=5,
    strikes=5,
    accounts=2_000,
    lifecycle=False,
)
"""Many series (4 underlyings x 5 expiries x 5 strikes x call/put = 200), trading only."""

POOR_FUNDS = 20_000
"""With ``lifecycle``, every tenth account deposits only this much."""

TICK_DIVISOR = 2_000
"""A series' tick is its underlying's starting spot over this (at least 1)."""


OrderRef = tuple[AccountId, OrderId]


class _Tracked:
    """What the generator knows about one of its resting orders."""

    __slots__ = ("is_buy", "remaining", "series")

    def __init__(self, series: SeriesId, is_buy: bool, remaining: int) -> None:
        self.series = series
        self.is_buy = is_buy
        self.remaining = remaining


class LogGenerator:
    """Produces a log input by input, applying each one to a shadow engine."""

    def __init__(self, seed: int, profile: Profile = REPLAY) -> None:
        self.rng = random.Random(seed)
        self.profile = profile
        self.engine = Engine()
        self.start_spot = {Underlying(name): spot for name, spot in profile.underlyings}
        self.spot = dict(self.start_spot)
        self.next_expiry = dict.fromkeys(self.spot, 1)
        self.series: list[ListSeries] = []
        """Series that are trading."""
        self.mid: dict[SeriesId, int] = {}
        self.accounts = [AccountId(f"acct{i:05d}") for i in range(profile.accounts)]
        self.last_order_id = dict.fromkeys(self.accounts, 0)
        self.orders: dict[OrderRef, _Tracked] = {}
        self.live: dict[SeriesId, list[OrderRef]] = {}
        """Resting orders per series, unordered: removal swaps in the last one."""
        self.slot: dict[OrderRef, int] = {}
        self.pending: list[Message] = []
        """Inputs queued to follow the current one (an expiry and its relisting)."""
        self.count = 0

    def messages(self, count: int) -> list[Message]:
        """The first ``count`` inputs: listings and deposits, then trading."""
        out: list[Message] = []
        for msg in self.setup():
            if len(out) == count:
                return out
            self.apply(msg)
            out.append(msg)
        while len(out) < count:
            out.append(self.step())
        return out

    def setup(self) -> list[Message]:
        """Listings for every underlying and expiry, and a deposit per account."""
        out: list[Message] = []
        for underlying in self.spot:
            for _ in range(self.profile.expiries):
                out.extend(self._list_expiry(underlying))
        for i, account in enumerate(self.accounts):
            poor = self.profile.lifecycle and i % 10 == 9  # to meet collateral limits
            out.append(Deposit(account, Cash(POOR_FUNDS if poor else self.profile.funds)))
        return out

    def step(self) -> Message:
        """Generate the next input and apply it to the shadow engine."""
        msg = self._choose()
        self.apply(msg)
        return msg

    def apply(self, msg: Message) -> None:
        """Apply an input to the shadow engine and follow which orders rest."""
        self.count += 1
        result = self.engine.apply(msg)
        if not result.accepted:
            return
        for fill in result.fills:
            maker = (fill.maker, OrderId(fill.maker_order))
            tracked = self.orders.get(maker)
            if tracked is not None:
                tracked.remaining -= fill.qty
                if not tracked.remaining:
                    self._forget(maker)
        for cancelled in result.cancelled:
            self._forget((cancelled.account, OrderId(cancelled.order_id)))
        traded = sum(fill.qty for fill in result.fills)
        if isinstance(msg, ListSeries):
            self.series.append(msg)
            self.live[msg.series] = []
        elif isinstance(msg, NewOrder):
            if msg.kind is not OrderKind.IOC and msg.qty > traded:
                self._track((msg.account, msg.order_id), msg.series, msg.side, msg.qty - traded)
        elif isinstance(msg, CancelReplace):
            old = self.orders[(msg.account, msg.order_id)]
            self._forget((msg.account, msg.order_id))
            if msg.qty > traded:
                side = Side.BUY if old.is_buy else Side.SELL
                self._track((msg.account, msg.new_order_id), old.series, side, msg.qty - traded)
        elif isinstance(msg, Cancel):
            self._forget((msg.account, msg.order_id))
        elif isinstance(msg, SettlementPrice | Expire):
            expired = (msg.underlying, msg.expiry)
            self.series = [s for s in self.series if (s.underlying, s.expiry) != expired]

    def _track(self, ref: OrderRef, series: SeriesId, side: Side, remaining: int) -> None:
        self.orders[ref] = _Tracked(series, side is Side.BUY, remaining)
        live = self.live[series]
        self.slot[ref] = len(live)
        live.append(ref)

    def _forget(self, ref: OrderRef) -> None:
        tracked = self.orders.pop(ref, None)
        if tracked is None:
            return
        live = self.live[tracked.series]
        slot = self.slot.pop(ref)
        last = live.pop()
        if last != ref:
            live[slot] = last
            self.slot[last] = slot

    # Choosing an input.

    def _choose(self) -> Message:
        rng, profile = self.rng, self.profile
        if self.pending:
            return self.pending.pop(0)
        if profile.lifecycle:
            if self.count % profile.expiry_every == 0:
                return self._price_nearest_expiry()
            roll = rng.random()
            if roll < 0.01:
                return Deposit(rng.choice(self.accounts), Cash(rng.randrange(1, 10**6)))
            if roll < 0.015:
                return Withdraw(rng.choice(self.accounts), Cash(rng.randrange(1, 10**6)))
            if roll < 0.03:
                return self._bad_input()
        series = rng.choice(self.series)
        self._drift(series)
        live = self.live[series.series]
        roll = rng.random()
        if live and (roll < 0.25 or len(live) > 2 * profile.target_depth):
            account, order_id = rng.choice(live)
            return Cancel(account, order_id)
        if live and roll < 0.35:
            return self._move(series, rng.choice(live))
        if roll < 0.45:
            return self._order(series, OrderKind.IOC, aggressive=True)
        if roll < 0.55:
            return self._order(series, OrderKind.POST_ONLY, aggressive=False)
        return self._order(series, OrderKind.GTC, aggressive=False)

    def _order(self, series: ListSeries, kind: OrderKind, *, aggressive: bool) -> NewOrder:
        rng = self.rng
        account = rng.choice(self.accounts)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = self._price(series, side, aggressive=aggressive)
        qty = Quantity(series.lot * rng.randrange(1, 10))
        return NewOrder(account, self._new_id(account), series.series, side, price, qty, kind)

    def _move(self, series: ListSeries, ref: OrderRef) -> CancelReplace:
        account, order_id = ref
        side = Side.BUY if self.orders[ref].is_buy else Side.SELL
        price = self._price(series, side, aggressive=False)
        qty = Quantity(series.lot * self.rng.randrange(1, 10))
        return CancelReplace(account, order_id, self._new_id(account), price, qty)

    def _price(self, series: ListSeries, side: Side, *, aggressive: bool) -> Price:
        """1-5 ticks from the mid: behind it when passive, through it when aggressive."""
        offset = self.rng.randrange(1, 6) * series.tick
        if (side is Side.BUY) != aggressive:
            offset = -offset
        return Price(max(series.tick, self.mid[series.series] + offset))

    def _drift(self, series: ListSeries) -> None:
        if self.rng.random() < 0.05:
            step = series.tick if self.rng.random() < 0.5 else -series.tick
            self.mid[series.series] = max(6 * series.tick, self.mid[series.series] + step)

    def _new_id(self, account: AccountId) -> OrderId:
        self.last_order_id[account] += 1
        return OrderId(self.last_order_id[account])

    def _bad_input(self) -> Message:
        """An input the engine must reject, with a realistic mistake in it."""
        rng = self.rng
        order = self._order(rng.choice(self.series), OrderKind.GTC, aggressive=False)
        account, side, qty = order.account, order.side, order.qty
        mistake = rng.randrange(5)
        if mistake == 0:  # off the tick (every generated tick is at least 2)
            return NewOrder(
                account, order.order_id, order.series, side, Price(order.price + 1), qty
            )
        if mistake == 1:
            unknown = SeriesId("NO-SUCH-SERIES")
            return NewOrder(account, order.order_id, unknown, side, order.price, qty)
        if mistake == 2:  # a retry of an order already sent
            return NewOrder(account, OrderId(1), order.series, side, order.price, qty)
        if mistake == 3:
            return Cancel(account, OrderId(10**9))
        return Withdraw(account, Cash(self.profile.funds * 10))

    # Expiries.

    def _list_expiry(self, underlying: Underlying) -> list[ListSeries]:
        """Every strike of the next expiry of ``underlying``, as a call and a put."""
        expiry = Expiry(self.next_expiry[underlying])
        self.next_expiry[underlying] += 1
        spot = self.spot[underlying]
        tick = max(2, self.start_spot[underlying] // TICK_DIVISOR)
        step = max(tick, spot // 10 // tick * tick)
        atm = spot // tick * tick
        out = []
        for k in range(self.profile.strikes):
            strike = max(step, atm + (k - self.profile.strikes // 2) * step)
            for option_type in (OptionType.CALL, OptionType.PUT):
                call = option_type is OptionType.CALL
                cap = strike + 2 * step if call else 0
                name = SeriesId(f"{underlying}-{expiry}-{strike}-{'C' if call else 'P'}")
                out.append(
                    ListSeries(
                        name,
                        underlying,
                        expiry,
                        option_type,
                        Price(strike),
                        1,
                        Price(tick),
                        Quantity(1),
                        Price(cap),
                    )
                )
                fair = max(min(spot, cap) - strike, 0) if call else max(strike - spot, 0)
                self.mid[name] = fair // tick * tick + 20 * tick
        return out

    def _price_nearest_expiry(self) -> Message:
        """Publish the settlement price of a random underlying's nearest expiry, and queue
        that expiry's ``Expire`` and the listing of a new expiry."""
        underlying = self.rng.choice(sorted(self.spot))
        expiry = min(s.expiry for s in self.series if s.underlying == underlying)
        spot = max(1, self.spot[underlying] * self.rng.randrange(90, 111) // 100)
        self.spot[underlying] = spot
        self.pending = [Expire(underlying, expiry), *self._list_expiry(underlying)]
        return SettlementPrice(underlying, expiry, Price(spot))


def generate(count: int, seed: int, profile: Profile = REPLAY) -> list[Message]:
    """The first ``count`` inputs of the log for ``seed`` and ``profile``."""
    return LogGenerator(seed, profile).messages(count)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/genlog.py``: write a generated log; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="genlog.py", description="Write a deterministic, realistic input log."
    )
    parser.add_argument("count", type=int, help="number of inputs")
    parser.add_argument("out", help="output file, or - for standard output")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        choices=["replay", "benchmark"],
        default="replay",
        help="replay: small venue, whole life cycle; benchmark: 200 series, trading only",
    )
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("count must not be negative")
    profile = REPLAY if args.profile == "replay" else BENCHMARK
    lines = b"".join(
        encode_message(msg) + b"\n" for msg in generate(args.count, args.seed, profile)
    )
    if args.out == "-":
        sys.stdout.buffer.write(lines)
        return 0
    try:
        Path(args.out).write_bytes(lines)
    except OSError as exc:
        print(f"genlog: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.count} inputs to {args.out} (seed {args.seed}, profile {args.profile})")
    return 0
