"""The batch run: the run spec, planning, one job, engines, budget, reports, locks."""
