"""Per-resource registries: a Strategy (what happens on create/update/delete) and a generic Store."""
