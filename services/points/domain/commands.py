"""Commands of the points service (imperative; the contract's models, re-used)."""
from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed

__all__ = ["OpenAccount", "SubmitDeed", "ReviewDeed", "Redeem", "Adjust"]
