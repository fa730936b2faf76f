"""Balanced annotator groups from a roster (the figure's "personnel assignment").

Leaders are dealt first so every group has one; the rest are dealt round-robin in a seeded order,
then a seeded local search swaps pairs of annotators (leader for leader, member for member) while
the imbalance falls. Imbalance = sum over numeric columns of the spread of group means (in units
of the column's standard deviation) + sum over category columns of the spread of group shares.
Annotators flagged ``expert`` in the roster form the separate ``expert`` group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.annotation.protocol import EXPERT_GROUP
from emotions_data.schema.errors import ConfigError, ManifestError

NUMERIC = ("experience_years", "msceit_score")
CATEGORICAL = ("education", "culture")
TRUE_WORDS = {"1", "true", "yes", "y", "t"}


@dataclass(frozen=True)
class Allocation:
    groups: pd.DataFrame
    #: column -> spread across groups (numeric: max-min of means in SDs; category: of shares)
    imbalance: dict[str, float]
    #: Leader candidates beyond one per group, who joined as members.
    surplus_leaders: tuple[str, ...] = ()

    @property
    def total_imbalance(self) -> float:
        return float(sum(self.imbalance.values()))


def group_names(k: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [letters[i] if i < 26 else f"G{i + 1}" for i in range(k)]


def _bool_column(values: pd.Series) -> npt.NDArray[np.bool_]:
    if values.dtype == bool:
        return np.asarray(values.to_numpy(), dtype=bool)
    return np.asarray(values.astype(str).str.strip().str.lower().isin(TRUE_WORDS), dtype=bool)


def _features(roster: pd.DataFrame) -> tuple[list[npt.NDArray[np.float64]], list[str]]:
    """One matrix per balanced column: standardised numbers or one-hot categories."""
    blocks: list[npt.NDArray[np.float64]] = []
    names: list[str] = []
    for col in NUMERIC:
        if col in roster.columns:
            values = pd.to_numeric(roster[col], errors="coerce")
            if values.isna().any():
                bad = roster.loc[values.isna(), "annotator_id"].iloc[0]
                raise ManifestError([f"roster: annotator {bad!r} has a non-numeric {col}"])
            sd = float(values.std(ddof=0)) or 1.0
            blocks.append(((values - values.mean()) / sd).to_numpy()[:, None])
            names.append(col)
    for col in CATEGORICAL:
        if col in roster.columns:
            blocks.append(pd.get_dummies(roster[col].astype(str)).to_numpy(dtype=float))
            names.append(col)
    return blocks, names


def _spreads(
    blocks: list[npt.NDArray[np.float64]], assign: npt.NDArray[np.int64], k: int
) -> npt.NDArray[np.float64]:
    counts = np.bincount(assign, minlength=k).astype(float)[:, None]
    out = []
    for block in blocks:
        sums = np.zeros((k, block.shape[1]))
        np.add.at(sums, assign, block)
        means = sums / np.maximum(counts, 1)
        out.append(float((means.max(axis=0) - means.min(axis=0)).max()))
    return np.array(out)


def allocate_groups(
    roster: pd.DataFrame,
    k: int,
    *,
    seed: int = 0,
    iterations: int = 4000,
    min_group_size: int = 1,
) -> Allocation:
    """Split ``roster`` into ``k`` balanced groups with exactly one leader each.

    ``min_group_size`` is the most judgements per item a crowd stage needs
    (``check.needed_group_size``): fewer annotators than that per group is refused, not
    silently capped at push time.
    """
    if "annotator_id" not in roster.columns:
        raise ManifestError(["roster: missing column 'annotator_id'"])
    if k < 1:
        raise ConfigError(f"--groups must be at least 1, got {k}")
    roster = roster.copy()
    roster["annotator_id"] = roster["annotator_id"].astype(str)
    dup = roster["annotator_id"][roster["annotator_id"].duplicated()]
    if len(dup):
        raise ManifestError([f"roster: annotator_id {dup.iloc[0]!r} appears more than once"])
    leader = _bool_column(roster["leader"]) if "leader" in roster else np.zeros(len(roster), bool)
    expert = _bool_column(roster["expert"]) if "expert" in roster else np.zeros(len(roster), bool)
    crowd = roster[~expert].reset_index(drop=True)
    crowd_leader = leader[~expert]
    if len(crowd) < k:
        raise ConfigError(f"roster has {len(crowd)} annotators, fewer than {k} groups")
    if crowd_leader.sum() < k:
        raise ConfigError(
            f"roster has {int(crowd_leader.sum())} leader(s); each of the {k} groups needs one"
        )
    if len(crowd) // k < min_group_size:
        raise ConfigError(
            f"roster has {len(crowd)} crowd annotators: {k} groups would have {len(crowd) // k} "
            f"member(s), fewer than the {min_group_size} judgements per item the protocol needs; "
            f"use --groups {max(len(crowd) // min_group_size, 1)} or add annotators"
        )
    rng = np.random.default_rng(seed)
    surplus: tuple[str, ...] = ()
    if crowd_leader.sum() > k:
        # One leader per group: a seeded choice of k candidates, the others join as members.
        candidates = np.flatnonzero(crowd_leader)
        keep = np.sort(rng.permutation(candidates)[:k])
        surplus = tuple(sorted(crowd.loc[np.setdiff1d(candidates, keep), "annotator_id"]))
        crowd_leader = np.zeros(len(crowd), dtype=bool)
        crowd_leader[keep] = True
    assign = np.empty(len(crowd), dtype=np.int64)
    leaders = rng.permutation(np.flatnonzero(crowd_leader))
    members = rng.permutation(np.flatnonzero(~crowd_leader))
    assign[leaders] = np.arange(len(leaders)) % k
    # Members fill the smallest groups first so sizes differ by at most one.
    sizes = np.bincount(assign[leaders], minlength=k)
    for idx in members:
        g = int(np.flatnonzero(sizes == sizes.min())[0])
        assign[idx] = g
        sizes[g] += 1
    blocks, names = _features(crowd)
    if blocks:
        score = _spreads(blocks, assign, k).sum()
        for _ in range(iterations):
            i, j = rng.integers(0, len(crowd), 2)
            if assign[i] == assign[j] or crowd_leader[i] != crowd_leader[j]:
                continue
            assign[i], assign[j] = assign[j], assign[i]
            new = _spreads(blocks, assign, k).sum()
            if new < score:
                score = new
            else:
                assign[i], assign[j] = assign[j], assign[i]
    names_k = group_names(k)
    out = crowd.copy()
    out["group_id"] = [names_k[g] for g in assign]
    out["leader"] = crowd_leader
    experts = roster[expert].copy()
    experts["group_id"] = EXPERT_GROUP
    experts["leader"] = False
    groups = pd.concat([out, experts], ignore_index=True)
    groups["active"] = True
    groups["reason"] = None
    groups["updated_stage"] = None
    groups = groups.drop(columns=[c for c in ("expert",) if c in groups.columns])
    first = ["annotator_id", "group_id", "leader", "active", "reason", "updated_stage"]
    groups = groups[first + [c for c in groups.columns if c not in first]]
    groups = groups.sort_values(["group_id", "annotator_id"], kind="stable").reset_index(drop=True)
    spreads = _spreads(blocks, assign, k) if blocks else np.array([])
    return Allocation(
        groups=groups,
        imbalance=dict(zip(names, spreads.round(4).tolist(), strict=True)),
        surplus_leaders=surplus,
    )


def allocation_summary(allocation: Allocation) -> dict[str, Any]:
    g = allocation.groups
    sizes = g.groupby("group_id").size().to_dict()
    return {
        "groups": {str(k): int(v) for k, v in sizes.items()},
        "leaders": {str(k): list(v) for k, v in g[g["leader"]].groupby("group_id")["annotator_id"]},
        "imbalance": allocation.imbalance,
        "surplus_leaders": list(allocation.surplus_leaders),
    }
