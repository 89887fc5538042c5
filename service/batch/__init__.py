"""Archive scoring (`convintel score`, `convintel report`, `convintel topics trends`):
archive rows (read by `nlp.archive`) into validated conversations, durable checkpointed
outputs, the local and Ray engines, and the trend reports. An operator tool over the
library; it imports nothing from `service.api` (HTTP)."""
