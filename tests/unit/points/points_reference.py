"""An in-memory reference ledger for the points tests: it stores what the application will
store in PostgreSQL (accounts, postings by transfer id, deeds) and drives only the pure
domain functions, the way the application layer will."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from schemas.points import (
    AccountKind, AccountOpened, Adjust, DeedApproved, DeedRejected, DeedSubmitted, OpenAccount, Redeem, ReviewDeed,
    SubmitDeed, TransferPosted, TransferRefused,
)
from services.kit.errors import Rejected
from services.points import DEFAULT_RULES_PATH
from services.points.domain import (
    Account, Deed, Earning, EarningRules, TransferRefusal, award_plan, decide_transfer, decide_award,
    decide_expire, decide_open_account, decide_review_deed, decide_submit_deed, deed_transfer_id, evolve_accounts,
    evolve_deed, issuer_account_id,
)


def default_rules() -> EarningRules:
    return EarningRules.from_yaml(Path(DEFAULT_RULES_PATH).read_text(encoding="utf-8"))


class ReferenceLedger:
    def __init__(self, rules: EarningRules | None = None):
        self.rules = rules or default_rules()
        self.accounts: dict[str, Account] = {}
        self.postings: dict[str, TransferPosted] = {}
        self.deeds: dict[str, Deed] = {}
        self.refused: list[TransferRefused] = []
        self.rejected: list[Rejected] = []
        self.events: list[object] = []

    # -- storage -------------------------------------------------------------------------
    def apply(self, events: list) -> list:
        for event in events:
            if isinstance(event, TransferPosted):
                assert event.transfer_id not in self.postings, f"transfer {event.transfer_id} posted twice"
                self.postings[event.transfer_id] = event
            if isinstance(event, TransferRefused):
                self.refused.append(event)
            if isinstance(event, (AccountOpened, TransferPosted)):
                self.accounts = evolve_accounts(self.accounts, [event])
            if isinstance(event, (DeedSubmitted, DeedApproved, DeedRejected)):
                self.deeds[event.deed_id] = evolve_deed(self.deeds.get(event.deed_id), event)
            if isinstance(event, (TransferPosted, TransferRefused)):
                for deed_id, deed in self.deeds.items():
                    if deed.transfer_id == event.transfer_id:
                        self.deeds[deed_id] = evolve_deed(deed, event)
        self.events.extend(events)
        return events

    def holder_account(self, kind: AccountKind, holder_id: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.kind is kind and a.holder_id == holder_id), None)

    def balance(self, account_id: str) -> int:
        return self.accounts[account_id].balance if account_id in self.accounts else 0

    def _command(self, decide) -> list:
        try:
            return self.apply(decide())
        except TransferRefusal as refusal:
            self.refused.append(refusal.event)
            self.rejected.append(refusal)
            return []
        except Rejected as rejected:
            self.rejected.append(rejected)
            return []

    # -- operations ----------------------------------------------------------------------
    def open(self, cmd: OpenAccount, at: datetime) -> list:
        return self._command(lambda: decide_open_account(
            self.accounts.get(cmd.account_id), cmd, at=at, holder_account=self.holder_account(cmd.kind, cmd.holder_id)))

    def award(self, earning: Earning, at: datetime | None = None) -> list:
        plan = award_plan(self.rules, earning)
        if plan is None:
            return []
        return self.apply(decide_award(
            plan, resident=self.holder_account(AccountKind.resident, earning.holder_id),
            issuer=self.accounts.get(issuer_account_id(earning.community_id)),
            existing=self.postings.get(plan.transfer_id), at=at))

    def redeem(self, cmd: Redeem, at: datetime) -> list:
        return self._command(lambda: decide_transfer(
            cmd, debit=self.accounts.get(cmd.debit_account), credit=self.accounts.get(cmd.credit_account),
            existing=self.postings.get(cmd.transfer_id), at=at, rules=self.rules))

    def adjust(self, cmd: Adjust, at: datetime) -> list:
        return self._command(lambda: decide_transfer(
            cmd, debit=self.accounts.get(cmd.debit_account), credit=self.accounts.get(cmd.credit_account),
            existing=self.postings.get(cmd.transfer_id), at=at, rules=self.rules))

    def expire(self, account_id: str, now: datetime) -> list:
        account = self.accounts.get(account_id)
        return self.apply(decide_expire(account, rules=self.rules, now=now)) if account else []

    def submit(self, cmd: SubmitDeed, at: datetime) -> list:
        return self._command(lambda: decide_submit_deed(
            self.deeds.get(cmd.deed_id), cmd, account=self.accounts.get(cmd.account_id), rules=self.rules, at=at))

    def review(self, cmd: ReviewDeed, at: datetime) -> list:
        deed = self.deeds.get(cmd.deed_id)

        def decide():
            return decide_review_deed(
                deed, cmd, rules=self.rules, resident=self.accounts.get(cmd.account_id),
                issuer=self.accounts.get(issuer_account_id(deed.community_id)) if deed else None,
                existing=self.postings.get(deed_transfer_id(cmd.deed_id)), at=at)

        return self._command(decide)

    # -- invariants ----------------------------------------------------------------------
    def check(self) -> None:
        """The ledger's invariants: zero sum, floors, lots make up resident balances, and
        every balance is what its postings say."""
        assert sum(a.balance for a in self.accounts.values()) == 0
        derived: dict[str, int] = {}
        for p in self.postings.values():
            derived[p.debit_account] = derived.get(p.debit_account, 0) - p.amount
            derived[p.credit_account] = derived.get(p.credit_account, 0) + p.amount
        for a in self.accounts.values():
            assert a.balance == derived.get(a.account_id, 0), a.account_id
            if a.kind is not AccountKind.issuer:
                assert a.balance >= 0, f"{a.account_id} below zero: {a.balance}"
            if a.kind is AccountKind.resident:
                assert a.balance == sum(lot.remaining for lot in a.lots)
                assert all(lot.remaining > 0 for lot in a.lots)
            assert Account.model_validate(a.model_dump(mode="json")) == a
