"""Archive scoring (`convintel score`, `convintel report`): streaming readers and writers,
durable checkpoints, the local and Ray engines, and the trend report. An operator tool over
the library: `nlp/` stays free of file I/O."""
