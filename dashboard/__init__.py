"""The live dashboard over the job's database (``make dashboard``, ``python -m dashboard``)."""
