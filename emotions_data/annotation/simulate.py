"""A simulated crowd that labels through the real Label Studio API, as distinct users.

Each annotator has a confusion matrix (rows: true class, columns: given label) from the roster's
``sim_profile`` and ``sim_accuracy`` columns: ``good`` (the accuracy on the diagonal, the rest
spread evenly), ``careless`` (near-uniform answers), ``adversarial`` (systematically answers the
next class of the taxonomy), ``expert`` (good with a high default accuracy). Annotations are
created with ``completed_by`` so Label Studio records who labelled what, exactly as for people.
Re-running labels only what is still missing: a judgement counts as it does for ``pull``, also
when its annotator was removed since, so a finished stage stays as it is.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.annotation.client import Client
from emotions_data.annotation.exports import video_id_from_data
from emotions_data.annotation.label_config import FROM_NAME, TO_NAME
from emotions_data.annotation.localdb import local_database, read_project_tasks
from emotions_data.annotation.protocol import Protocol
from emotions_data.annotation.push import active_members
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State, project_key
from emotions_data.schema.errors import ConfigError, ManifestError, ServiceError
from emotions_data.schema.io import read_table_file
from emotions_data.schema.taxonomy import Taxonomy

PROFILES = ("good", "careless", "adversarial", "expert")
DEFAULT_ACCURACY = {"good": 0.85, "careless": 0.25, "adversarial": 0.15, "expert": 0.98}


def confusion_matrix(profile: str, accuracy: float, k: int) -> npt.NDArray[np.float64]:
    """Row-stochastic k x k matrix: P(given label = column | true class = row)."""
    if profile not in PROFILES:
        raise ConfigError(f"sim_profile {profile!r} is not allowed; allowed: {', '.join(PROFILES)}")
    if not 0.0 <= accuracy <= 1.0:
        raise ConfigError(f"sim_accuracy must lie in [0, 1], got {accuracy}")
    if k == 1:
        return np.ones((1, 1), dtype=np.float64)
    if profile == "adversarial":
        # Right with ``accuracy``; otherwise mostly the next class: a systematic confusion.
        m = np.full((k, k), (1.0 - accuracy) * 0.1 / max(k - 2, 1))
        np.fill_diagonal(m, accuracy)
        for i in range(k):
            m[i, (i + 1) % k] = 0.0
            m[i, (i + 1) % k] = 1.0 - m[i].sum()
        return np.asarray(m / m.sum(axis=1, keepdims=True), dtype=np.float64)
    m = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(m, accuracy)
    return m


def _cell(value: object) -> str:
    """A roster cell as text; missing (None, NaN, pd.NA, empty) is ``""``."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    return str(value).strip()


def crowd_confusions(
    roster: pd.DataFrame, taxonomy: Taxonomy
) -> dict[str, npt.NDArray[np.float64]]:
    k = len(taxonomy.classes)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for _, row in roster.iterrows():
        profile = _cell(row.get("sim_profile")) or "good"
        raw = _cell(row.get("sim_accuracy"))
        try:
            acc = float(raw) if raw else DEFAULT_ACCURACY.get(profile, 0.85)
        except ValueError:
            raise ConfigError(
                f"roster: sim_accuracy {raw!r} of {row['annotator_id']!r} is not a number"
            ) from None
        out[str(row["annotator_id"])] = confusion_matrix(profile, acc, k)
    return out


def simulated_roster(
    groups: int = 3,
    per_group: int = 5,
    *,
    careless: int = 1,
    adversarial: int = 1,
    experts: int = 1,
    accuracy_range: tuple[float, float] = (0.8, 0.95),
    seed: int = 0,
) -> pd.DataFrame:
    """A roster with profile columns and simulation columns, careless/adversarial among members."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    ids = [f"ann{i + 1:03d}" for i in range(n)]
    profile = ["good"] * n
    bad = rng.permutation(np.arange(groups, n))  # the first ``groups`` are leaders, kept good
    for i in bad[:careless]:
        profile[i] = "careless"
    for i in bad[careless : careless + adversarial]:
        profile[i] = "adversarial"
    roster = pd.DataFrame(
        {
            "annotator_id": ids,
            "experience_years": rng.uniform(0, 10, n).round(1),
            "msceit_score": rng.normal(100, 15, n).round(0),
            "education": rng.choice(["bachelor", "master", "phd"], n),
            "culture": rng.choice(["east", "west"], n),
            "leader": [i < groups for i in range(n)],
            "expert": False,
            "sim_profile": profile,
            "sim_accuracy": [
                float(rng.uniform(*accuracy_range)) if p == "good" else DEFAULT_ACCURACY[p]
                for p in profile
            ],
        }
    )
    expert_rows = pd.DataFrame(
        {
            "annotator_id": [f"expert{i + 1:02d}" for i in range(experts)],
            "experience_years": 15.0,
            "msceit_score": 120.0,
            "education": "phd",
            "culture": "east",
            "leader": False,
            "expert": True,
            "sim_profile": "expert",
            "sim_accuracy": DEFAULT_ACCURACY["expert"],
        }
    )
    return pd.concat([roster, expert_rows], ignore_index=True)


@dataclass
class SimulateResult:
    stage: str
    created: int = 0
    already: int = 0
    per_annotator: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "annotations_created": self.created,
            "already_there": self.already,
            "per_annotator": self.per_annotator,
        }


#: Tasks per import request of a bulk simulation.
BULK_BATCH = 2000


def _reimport_with_annotations(
    client: Client,
    state: State,
    key: str,
    project_id: int,
    datas: dict[int, dict[str, Any]],
    planned: list[tuple[int, str, int, float]],
) -> None:
    """Replace the project's tasks by the same tasks carrying the planned judgements."""
    by_task: dict[int, list[dict[str, Any]]] = {}
    for task_id, label, user, lead in planned:
        by_task.setdefault(task_id, []).append(
            {
                "completed_by": user,
                "lead_time": lead,
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [label]},
                    }
                ],
            }
        )
    order = sorted(datas)
    # Forget the task ids first: a crash in between leaves a stage that push completes again.
    state.tasks[key] = {}
    state.save()
    client.delete_all_tasks(project_id)
    new_ids: dict[str, int] = {}
    for start in range(0, len(order), BULK_BATCH):
        batch = order[start : start + BULK_BATCH]
        ids = client.import_tasks(
            project_id,
            [{"data": datas[t], "annotations": by_task.get(t, [])} for t in batch],
        )
        if len(ids) != len(batch):
            raise ServiceError(
                f"Label Studio returned {len(ids)} task ids for {len(batch)} imported tasks"
            )
        for old, new in zip(batch, ids, strict=True):
            vid = video_id_from_data(datas[old])
            if vid is not None:
                new_ids[vid] = new
    state.tasks[key] = new_ids
    state.save()


def _item_rng(seed: int, stage: str, video_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{stage}/{video_id}".encode())])


def simulate_stage(
    root: Path,
    server: Server,
    protocol: Protocol,
    stage_name: str,
    groups: pd.DataFrame,
    truth: pd.Series,
    confusions: dict[str, npt.NDArray[np.float64]],
    *,
    seed: int = 0,
    workers: int = 4,
    bulk: bool = False,
) -> SimulateResult:
    """Label the stage's tasks with the simulated crowd until each has its judgements.

    ``bulk``: a project nobody has labelled yet gets its tasks replaced by the same tasks
    with the simulated judgements inline (one import request per ``BULK_BATCH`` tasks, as
    Label Studio stores imported annotations: ``completed_by`` is the user), instead of one
    API call per judgement (about 0.3 s each here: hours for a 28,000-video stage). The
    task ids change and the state file follows. The drawn labels are the same either way.
    """
    stage = protocol.stage(stage_name)
    state = State.load(root)
    projects = state.stage_projects(stage.name)
    if not projects:
        raise ConfigError(f"stage {stage.name!r} has no Label Studio project yet; push it first")
    classes = protocol.taxonomy.classes
    truth = truth.astype(str)
    client = Client(server)
    names = state.user_names()
    result = SimulateResult(stage=stage.name)
    planned: list[tuple[int, str, int, float]] = []
    first = 0  # where the current project's planned judgements start
    db = local_database(server.data_dir)
    for group, pid in sorted(projects.items()):
        members = active_members(groups, group)
        missing = [m for m in members if m not in confusions]
        if missing:
            raise ConfigError(f"annotator {missing[0]!r} has no simulation profile in the roster")
        need = min(stage.judgements, len(members))
        key = project_key(stage.name, group)
        tasks = state.tasks.get(key, {})
        # Judgements count when pull keeps them (see ``pull_stage``): by anyone in the group when
        # it got the tasks or in it now, active or not. An annotator an evaluation removed after
        # labelling leaves the task done, not short of a judgement for someone else to fill.
        counted = set(state.members.get(key, [])) | set(
            groups.loc[groups["group_id"].astype(str) == group, "annotator_id"].astype(str)
        )
        # Who already labelled what, from the server: a re-run completes, never duplicates.
        # The embedded server's database is read directly (an export snapshot takes minutes
        # for a 28,000-task stage), as ``pull`` does.
        done: dict[str, set[str]] = {}
        project_tasks = read_project_tasks(db, pid) if db is not None else client.export_tasks(pid)
        for task in project_tasks:
            vid = video_id_from_data(task.get("data") or {})
            for ann in task.get("annotations") or []:
                if not ann.get("was_cancelled") and vid is not None:
                    user = ann.get("completed_by")
                    done.setdefault(vid, set()).add(
                        names.get(int(user), str(user)) if isinstance(user, int) else str(user)
                    )
        for vid, task_id in sorted(tasks.items()):
            if vid not in truth.index:
                raise ManifestError([f"truth has no label for video {vid!r}"])
            true_idx = classes.index(truth[vid])
            have = done.get(vid, set())
            result.already += len(have & counted)
            todo = need - len(have & counted)
            if todo <= 0:
                continue
            rng = _item_rng(seed, stage.name, vid)
            candidates = [m for m in members if m not in have]
            picked = rng.permutation(len(candidates))[:todo]
            for idx in sorted(picked.tolist()):
                annotator = candidates[idx]
                row = confusions[annotator][true_idx]
                label = classes[int(rng.choice(len(classes), p=row))]
                lead = float(rng.lognormal(np.log(12.0), 0.5))
                planned.append((task_id, label, state.users[annotator], round(lead, 2)))
                result.per_annotator[annotator] = result.per_annotator.get(annotator, 0) + 1
        if bulk and not done and planned[first:]:
            # Nobody has labelled this project yet: import its tasks again with the judgements
            # inline, instead of one API call per judgement.
            datas = {
                int(t["id"]): t["data"] for t in project_tasks if isinstance(t.get("data"), dict)
            }
            _reimport_with_annotations(client, state, key, pid, datas, planned[first:])
            result.created += len(planned) - first
            del planned[first:]
        first = len(planned)
    # Labels are drawn above, in a fixed order; only the HTTP calls overlap.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(client.annotate, t, lab, u, lead, FROM_NAME, TO_NAME)
            for t, lab, u, lead in planned
        ]
        for future in futures:
            future.result()
            result.created += 1
    return result


def read_truth(path: Path) -> pd.Series:
    """video_id -> true label from a CSV/Parquet with ``video_id`` and ``label`` columns."""
    table = read_table_file(path)
    missing = [c for c in ("video_id", "label") if c not in table.columns]
    if missing:
        raise ManifestError(
            [
                f"{path}: missing column(s) {', '.join(missing)}; a truth table has video_id and "
                f"label (the true class); columns found: {', '.join(map(str, table.columns))}"
            ]
        )
    return table.set_index(table["video_id"].astype(str))["label"]
