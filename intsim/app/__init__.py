"""intsim.app: one run from settings to a run folder (layer 4, application).

config.py resolves a :class:`RunConfig` (defaults <- TOML <- options);
runfolder.py writes run folders atomically (checkpoints with checksums);
auditreport.py turns the layers' audits into tables.
"""
