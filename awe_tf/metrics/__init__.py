"""Ranking metrics (precision@k, recall@k) as pure functions."""

from awe_tf.metrics.ranking import (
    DEFAULT_KS,
    ROUNDING,
    check_metric,
    evaluate_scorer,
    hits_at_k,
    precision_at_k,
    protocol_ks,
    ranked,
    ranking_report,
    recall_at_k,
    row_values,
    top_k,
)

__all__ = [
    "DEFAULT_KS",
    "ROUNDING",
    "check_metric",
    "evaluate_scorer",
    "hits_at_k",
    "precision_at_k",
    "protocol_ks",
    "ranked",
    "ranking_report",
    "recall_at_k",
    "row_values",
    "top_k",
]
