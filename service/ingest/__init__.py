"""Inbound helpdesk webhooks, without HTTP: each helpdesk's payload read into the
per-message path's `IncomingMessage`s (`zendesk.py`, `intercom.py`, `freshdesk.py`), the
helpdesks' request signatures (`signatures.py`), and what the three share (`delivery.py`:
the result types, payload parsing, ids and channels; `html_text.py`: HTML bodies as text).

The HTTP endpoints that use them are `service/api/ingest_routes.py`; how to point each
helpdesk at them is docs/ingest.md."""
