"""gemini.generations: one store job per world size of a training job.

An agent's store keeps one world size per job name (a save of another world
size is refused: "drop the job first"). A gemini.torch.Checkpointer restored
onto another world size therefore saves into a *generation* of its job: the
store job named

    JOB           when the agent holds no job JOB, or JOB has this world size;
    JOB.worldN    otherwise (N: this world size), e.g. "llama.world16".

``load_latest`` considers JOB and all its ``JOB.worldN`` generations, restores the
newest iteration complete in any of them (resharding when its world size
differs), and later saves go to this world's generation. The other
generations are dropped only once this world's generation holds a complete
iteration at a step at least as new as theirs (so nothing restorable is ever
lost): by each machine's local rank 0, on its own agent.

Functions here are pure (views in, a plan out) except ``local_view``.
"""
import json

from . import _gemini

GeminiError = _gemini.GeminiError
SEP = ".world"  # Store job names hold only letters, digits, ".", "_" and "-".


def name(job, world):
    """The store job of `job`'s generation of world size `world` (not the bare name)."""
    return f"{job}{SEP}{int(world)}"


def belongs(job, store_job):
    """Whether store_job is `job` or one of its JOB.worldN generations."""
    if store_job == job:
        return True
    rest = store_job[len(job) + len(SEP):] if store_job.startswith(job + SEP) else ""
    return rest.isdigit() and not rest.startswith("0")


def local_view(client, job):
    """{store job: [world size, newest complete iteration]} of `job`'s generations
    this machine's agent holds."""
    try:
        jobs = json.loads(client.status_json()).get("jobs", [])
    except ValueError as e:
        raise GeminiError(f"the agent's status is not valid JSON: {e}") from None
    view = {}
    for j in jobs:
        n = j.get("job")
        # World size 0: a job this agent knows of (e.g. its coordinator set the
        # complete iteration) but holds no shard of; other agents' views say more.
        if isinstance(n, str) and belongs(job, n) and j.get("world_size", 0) != 0:
            view[n] = [int(j.get("world_size", 0)), int(client.complete_iteration(n))]
    return view


class Plan:
    """What a Checkpointer restores from and saves into.

    source: the store job to restore (None: nothing complete), source_world its
    world size, iteration the step to restore (-1: none); target: the store job
    saves go to; superseded: {store job: its complete iteration} of the other
    generations, each dropped once target holds a complete iteration >= it."""

    def __init__(self, source, source_world, iteration, target, superseded):
        self.source, self.source_world, self.iteration = source, source_world, iteration
        self.target, self.superseded = target, superseded

    def __repr__(self):
        return (f"Plan(source={self.source!r}, source_world={self.source_world}, "
                f"iteration={self.iteration}, target={self.target!r}, "
                f"superseded={self.superseded})")


def plan(job, world, views, target=None):
    """The Plan every rank derives alike from all ranks' local views.

    A generation's complete iteration is the smallest any rank's agent reports
    for it (what every rank can load; ranks whose agent lacks it fetch shards
    from peers). The newest wins; on a tie, the one of this world size, then
    the bare job name. `target`: the store job to save into when the caller is
    told (`gemini launch` sets $GEMINI_STORE_JOB: the agents replicate and
    complete that one); it must be `job` or one of its generations."""
    merged = {}
    for v in views:
        for n, (w, it) in sorted(v.items()):
            if not belongs(job, n) or not isinstance(w, int) or w < 1:
                raise GeminiError(f"store job {n!r}: invalid world size {w!r} in an agent's "
                                  f"status")
            if n in merged and merged[n][0] != w:
                raise GeminiError(f"store job {n!r} has world size {merged[n][0]} on one "
                                  f"agent and {w} on another: drop it on every agent "
                                  f"(gemini.Client(socket).drop_job({n!r}))")
            m = merged.setdefault(n, [w, it])
            m[1] = min(m[1], it)
    for n, (w, _) in merged.items():
        if n != job and n != name(job, w):
            raise GeminiError(f"store job {n!r} holds checkpoints of world size {w}, not the "
                              f"{n.rsplit(SEP, 1)[1]} its name says: drop it "
                              f"(gemini.Client(socket).drop_job({n!r}))")
    complete = [(it, w == world, n == job, n) for n, (w, it) in merged.items() if it >= 0]
    source = max(complete)[3] if complete else None
    iteration = merged[source][1] if source else -1
    source_world = merged[source][0] if source else None
    if target is not None:
        if not belongs(job, target):
            raise GeminiError(f"store job {target!r} (GEMINI_STORE_JOB) is not job {job!r} "
                              f"nor one of its {SEP}N generations")
        if target in merged and merged[target][0] != world:
            raise GeminiError(f"store job {target!r} (GEMINI_STORE_JOB) holds checkpoints of "
                              f"world size {merged[target][0]}, not this world's {world}")
    elif source is not None and source_world == world:
        target = source
    elif job not in merged or merged[job][0] == world:
        target = job
    else:
        target = name(job, world)
    superseded = {n: it for n, (_, it) in merged.items() if n != target}
    return Plan(source, source_world, iteration, target, superseded)
