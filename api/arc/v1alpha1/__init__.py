"""arc.opendefense.cloud/v1alpha1."""
