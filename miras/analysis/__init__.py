"""MLflow runs -> pandas: a sweep's trials, ablation tables, paired effects, scaling fits, the paper view.

Typical use::

    from miras.analysis import load_sweep, combination_summary, axis_effects
    sweep = load_sweep("my-sweep", "sqlite:////abs/runs/my-sweep/mlflow.db")
    combination_summary(sweep)      # mean ± 95% CI over seeds, best-of-LR first
    axis_effects(sweep)             # paired differences against a reference option per axis
"""

from .compare import PaperView, paper_view
from .frame import FINAL_METRICS, option_label, trials_frame, varying_settings
from .health import EXPLODING, NOT_LEARNING, health_table
from .load import Sweep, default_mode, load_sweep
from .scaling import (
    SCALING_AXES,
    PowerLaw,
    context_points,
    fit_power_law,
    frontier_points,
    objective_columns,
    pareto_cells,
    pareto_mask,
    pareto_trials,
    scaling_fits,
    scaling_points,
    varies,
)
from .stats import MIN_N, Interval, difference_range, metric_range, t_interval
from .store import SweepNotFoundError, default_tracking_uri, find_parent_run
from .tables import (
    ablations,
    axis_effects,
    best_of_lr,
    combination_summary,
    completed,
    failures,
    importance,
    interaction,
    interaction_pairs,
    ranking,
    tuned_lr,
    varied_axes,
)

__all__ = [
    "EXPLODING",
    "FINAL_METRICS",
    "MIN_N",
    "NOT_LEARNING",
    "SCALING_AXES",
    "Interval",
    "PaperView",
    "PowerLaw",
    "Sweep",
    "SweepNotFoundError",
    "ablations",
    "axis_effects",
    "best_of_lr",
    "combination_summary",
    "completed",
    "context_points",
    "default_mode",
    "default_tracking_uri",
    "difference_range",
    "failures",
    "find_parent_run",
    "fit_power_law",
    "frontier_points",
    "health_table",
    "importance",
    "interaction",
    "interaction_pairs",
    "load_sweep",
    "metric_range",
    "objective_columns",
    "option_label",
    "paper_view",
    "pareto_cells",
    "pareto_mask",
    "pareto_trials",
    "ranking",
    "scaling_fits",
    "scaling_points",
    "t_interval",
    "trials_frame",
    "tuned_lr",
    "varied_axes",
    "varies",
    "varying_settings",
]
