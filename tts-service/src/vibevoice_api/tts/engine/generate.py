"""The diffusion schedule of VibeVoice-Realtime (the generation algorithm itself is in :mod:`.batch`)."""

from __future__ import annotations

from typing import Any


def make_scheduler(head_cfg: dict[str, Any]) -> Any:
    """DPM-Solver++ (2nd order multistep, lower-order final step) with the checkpoint's schedule."""
    from diffusers import DPMSolverMultistepScheduler

    schedule = head_cfg.get("ddpm_beta_schedule", "cosine")
    return DPMSolverMultistepScheduler(
        num_train_timesteps=int(head_cfg.get("ddpm_num_steps", 1000)),
        beta_schedule="squaredcos_cap_v2" if schedule == "cosine" else schedule,
        prediction_type=head_cfg.get("prediction_type", "v_prediction"),
        solver_order=2,
        algorithm_type="dpmsolver++",
        solver_type="midpoint",
        lower_order_final=True,
        timestep_spacing="linspace",
    )
