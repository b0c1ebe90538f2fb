"""DPM-Solver++ (2nd order multistep, midpoint, lower-order first and final step) for many rows at once.

diffusers' ``DPMSolverMultistepScheduler`` keeps its position and history inside the object, so one
instance can drive one sample at a time. Here the schedule of each step count is read once from a
configured diffusers scheduler (its timesteps and sigmas, converted with its own
``_sigma_to_alpha_sigma_t``) and the update is applied to a whole batch in which every row may use a
different number of steps: row ``r`` at step ``k`` uses its own table's coefficients. The arithmetic
is the scheduler's, term by term, so a row gives the scheduler's result bit for bit in float32.

Per step ``k`` of a ``v_prediction`` model with the data-prediction (``++``) solver:

* ``x0 = alpha_s · x − sigma_s · v``
* first order (``k == 0`` and the final step): ``x' = (σt/σs) · x − (αt·(e^{−h} − 1)) · x0``
* second order: ``x' = (σt/σs) · x − (αt·(e^{−h} − 1)) · x0 − (0.5·αt·(e^{−h} − 1)) · (1/r0) · (x0 − x0_prev)``
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StepTable:
    """The per-step scalars of one step count (float32, on the CPU)."""

    timesteps: torch.Tensor  # [steps] int64
    alpha_s: torch.Tensor  # [steps] for x0 = alpha_s·x − sigma_s·v
    sigma_s: torch.Tensor
    ratio: torch.Tensor  # σt/σs
    d0: torch.Tensor  # αt·(e^{−h} − 1)
    d1: torch.Tensor  # 0.5·αt·(e^{−h} − 1) (0 on first-order steps)
    inv_r0: torch.Tensor  # 1/r0 (0 on first-order steps)
    second: tuple[bool, ...]

    @property
    def steps(self) -> int:
        return int(self.timesteps.shape[0])


def build_table(scheduler: Any, steps: int) -> StepTable:
    """Read the schedule for ``steps`` steps off a configured DPMSolverMultistepScheduler."""
    sched = copy.deepcopy(scheduler)
    sched.set_timesteps(steps)
    conf = sched.config
    if conf.algorithm_type != "dpmsolver++" or conf.solver_type != "midpoint" or conf.solver_order != 2:
        raise ValueError("the batched solver implements 2nd-order midpoint DPM-Solver++ only")
    if conf.prediction_type != "v_prediction":
        raise ValueError("the batched solver implements v_prediction only")
    n = len(sched.timesteps)
    sig = sched.sigmas
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in ("alpha_s", "sigma_s", "ratio", "d0", "d1", "inv_r0")}
    second = []
    zero = torch.zeros((), dtype=torch.float32)
    for k in range(n):
        final = k == n - 1 and (
            conf.euler_at_final or (conf.lower_order_final and n < 15) or conf.final_sigmas_type == "zero"
        )
        use_second = k > 0 and not final
        alpha_t, sigma_t = sched._sigma_to_alpha_sigma_t(sig[k + 1])
        alpha_s0, sigma_s0 = sched._sigma_to_alpha_sigma_t(sig[k])
        lambda_t = torch.log(alpha_t) - torch.log(sigma_t)
        lambda_s0 = torch.log(alpha_s0) - torch.log(sigma_s0)
        h = lambda_t - lambda_s0
        cols["alpha_s"].append(alpha_s0)
        cols["sigma_s"].append(sigma_s0)
        cols["ratio"].append(sigma_t / sigma_s0)
        cols["d0"].append(alpha_t * (torch.exp(-h) - 1.0))
        if use_second:
            alpha_s1, sigma_s1 = sched._sigma_to_alpha_sigma_t(sig[k - 1])
            lambda_s1 = torch.log(alpha_s1) - torch.log(sigma_s1)
            r0 = (lambda_s0 - lambda_s1) / h
            cols["d1"].append(0.5 * (alpha_t * (torch.exp(-h) - 1.0)))
            cols["inv_r0"].append(1.0 / r0)
        else:
            cols["d1"].append(zero)
            cols["inv_r0"].append(zero)
        second.append(use_second)
    stacked = {k: torch.stack([v.to(torch.float32).reshape(()) for v in vs]) for k, vs in cols.items()}
    return StepTable(timesteps=sched.timesteps.clone(), second=tuple(second), **stacked)


@dataclass(frozen=True)
class _Step:
    """Step ``k`` for the rows still stepping: their indices and coefficients as [m, 1] columns."""

    idx: torch.Tensor | None  # None: every row
    rows: int
    t: torch.Tensor  # [2m] timesteps (positive rows, then negative rows)
    alpha_s: torch.Tensor
    sigma_s: torch.Tensor
    ratio: torch.Tensor
    d0: torch.Tensor
    d1: torch.Tensor
    inv_r0: torch.Tensor
    second: bool


class BatchSolver:
    """Step tables per step count, cached; :meth:`sample` runs guided diffusion for a batch of rows."""

    def __init__(self, scheduler: Any, plans: int = 64) -> None:
        self.scheduler = scheduler
        self._tables: dict[int, StepTable] = {}
        self._plans: dict[tuple[Any, ...], list[_Step]] = {}
        self._max_plans = plans

    def table(self, steps: int) -> StepTable:
        if steps not in self._tables:
            self._tables[steps] = build_table(self.scheduler, steps)
        return self._tables[steps]

    def _plan(self, steps: tuple[int, ...], device: torch.device) -> list[_Step]:
        key = (steps, str(device))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        n = len(steps)
        tables = [self.table(s) for s in steps]
        plan = []
        for k in range(max(steps)):
            rows = [r for r in range(n) if steps[r] > k]
            idx = None if len(rows) == n else torch.tensor(rows, device=device)

            def col(name: str, rows: list[int] = rows, k: int = k) -> torch.Tensor:
                return torch.stack([getattr(tables[r], name)[k] for r in rows]).unsqueeze(1).to(device)

            t = torch.stack([tables[r].timesteps[k] for r in rows])
            plan.append(
                _Step(
                    idx=idx,
                    rows=len(rows),
                    t=torch.cat([t, t]).to(device),
                    alpha_s=col("alpha_s"),
                    sigma_s=col("sigma_s"),
                    ratio=col("ratio"),
                    d0=col("d0"),
                    d1=col("d1"),
                    inv_r0=col("inv_r0"),
                    second=any(tables[r].second[k] for r in rows),
                )
            )
        if len(self._plans) >= self._max_plans:
            self._plans.pop(next(iter(self._plans)))
        self._plans[key] = plan
        return plan

    def sample(
        self,
        head: Any,
        noise: torch.Tensor,
        pos_cond: torch.Tensor,
        neg_cond: torch.Tensor,
        cfg_scale: torch.Tensor,
        steps: tuple[int, ...],
    ) -> torch.Tensor:
        """Latents [n, D] from start noise [n, D]; one head call per step over every row still stepping.

        Each call evaluates the positive and negative conditions of all those rows together
        (``2·m`` rows: classifier-free guidance ``uncond + cfg·(cond − uncond)``); ``cfg_scale`` is [n, 1].
        """
        dtype = noise.dtype
        x = noise
        prev: torch.Tensor | None = None  # x0 of the previous step, per row
        for st in self._plan(tuple(steps), noise.device):
            idx = st.idx

            def pick(t: torch.Tensor, idx: torch.Tensor | None = idx) -> torch.Tensor:
                return t if idx is None else t.index_select(0, idx)

            xs = pick(x)
            both = torch.cat([xs, xs], dim=0)
            cond = torch.cat([pick(pos_cond), pick(neg_cond)], dim=0)
            eps = head(both, st.t.to(both), condition=cond)
            c_eps, u_eps = eps[: st.rows], eps[st.rows :]
            guided = u_eps + pick(cfg_scale) * (c_eps - u_eps)
            x0 = st.alpha_s.to(dtype) * xs - st.sigma_s.to(dtype) * guided
            new = st.ratio * xs.to(torch.float32) - st.d0 * x0
            if st.second:
                assert prev is not None
                new = new - st.d1 * (st.inv_r0 * (x0 - pick(prev)))
            new = new.to(dtype)
            if idx is None:
                x, prev = new, x0
            else:
                x = x.index_copy(0, idx, new)
                base = prev if prev is not None else torch.zeros(x.shape, dtype=x0.dtype, device=x.device)
                prev = base.index_copy(0, idx, x0)
        return x
