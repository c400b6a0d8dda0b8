"""Admission plugins: cross-object policy run before a write is stored (``attributes.AdmissionPlugin``)."""
