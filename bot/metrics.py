"""Prometheus metrics. Labels are states and kinds, never ids or text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES_BY_STATE = Gauge(
    "afterglow_deliveries", "Deliveries in the database by state", ["state"]
)
DELIVERY_OUTCOMES = Counter(
    "afterglow_delivery_outcomes_total", "Send attempts by outcome", ["outcome"]
)
DISPATCH_LAG = Histogram(
    "afterglow_dispatch_lag_seconds",
    "Seconds between a delivery's due time and its send",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600),
)
REPLIES = Counter("afterglow_replies_total", "Replies recorded by kind", ["kind"])
ALERTS = Counter("afterglow_alerts_total", "Safety alerts raised by kind", ["kind"])
TELEGRAM_ERRORS = Counter(
    "afterglow_telegram_errors_total", "Telegram API errors by kind", ["kind"]
)
DISPATCH_TICKS = Counter("afterglow_dispatch_ticks_total", "Dispatcher ticks run")
CONTENT_FALLBACKS = Counter(
    "afterglow_content_fallback_total",
    "Prompts sent in the default language because the patient's had no translation",
    ["language"],
)
