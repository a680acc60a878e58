"""Keeping years of history in bounds: retention policies (`policies`), `db prune`
applying them (`prune`: downsampling exactly, dropping what a policy says, once at a time),
and where the database's space goes (`space`)."""
