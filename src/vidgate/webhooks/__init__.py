"""Webhooks: what a webhook says (``formats``), the outbox sender that delivers them
(``sender``, one per worker-side process, leasing deliveries so N can run), and its
retry and interval knobs (``config``). The webhook API lives in ``vidgate.api.webhooks``.
"""
